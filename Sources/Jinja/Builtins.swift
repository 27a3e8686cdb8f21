import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Global functions every template sees: Jinja's `range`, `namespace`, `dict`, and the two that
/// Hugging Face adds, `raise_exception(message)` and `strftime_now(format)`.
enum Builtins {
    static let names: Set<String> = ["range", "namespace", "dict", "raise_exception", "strftime_now"]

    /// Longest list `range(...)` may build.
    static let maxRangeLength = 1_000_000
}

extension Interpreter {
    mutating func callBuiltin(_ name: String, _ args: Args) throws(TemplateError) -> Value {
        switch name {
        case "range":
            try args.check(maxPositional: 3)
            var bounds: [Int] = []
            for (i, v) in args.positional.enumerated() {
                guard case .int(let n)? = v.numeric else {
                    throw TemplateError(.runtime, "range() argument \(i + 1) must be an integer, not \(v.typeName)")
                }
                bounds.append(n)
            }
            let (start, stop, stride): (Int, Int, Int)
            switch bounds.count {
            case 1: (start, stop, stride) = (0, bounds[0], 1)
            case 2: (start, stop, stride) = (bounds[0], bounds[1], 1)
            case 3: (start, stop, stride) = (bounds[0], bounds[1], bounds[2])
            default: throw TemplateError(.runtime, "range expected at least 1 argument, got 0")
            }
            guard stride != 0 else { throw TemplateError(.runtime, "range() arg 3 must not be zero") }
            let span = stride > 0 ? Double(stop) - Double(start) : Double(start) - Double(stop)
            let count = span <= 0 ? 0 : (span / Double(Swift.abs(stride))).rounded(.up)
            guard count <= Double(Builtins.maxRangeLength) else {
                throw TemplateError(.limit, "range() of \(Int(count)) items is longer than the limit of \(Builtins.maxRangeLength)")
            }
            try step(Int(count), at: nil)
            var items: [Value] = []
            items.reserveCapacity(Int(count))
            var i = start
            while stride > 0 ? i < stop : i > stop {
                items.append(.int(i))
                let (next, overflow) = i.addingReportingOverflow(stride)
                if overflow { break }
                i = next
            }
            return .array(items)
        case "namespace", "dict":
            var fields = ObjectValue()
            try args.check(maxPositional: 1, keywords: Set(args.keyword.map(\.0)))
            if let initial = args.positional.first {
                switch initial {
                case .object(let o): fields = o
                case .namespace(let ns): fields = ns.snapshot
                case .array(let pairs):
                    for pair in pairs {
                        guard case .array(let kv) = pair, kv.count == 2 else {
                            throw TemplateError(.runtime, "\(name)() needs a mapping or a list of pairs")
                        }
                        fields[kv[0].keyString] = kv[1]
                    }
                default:
                    throw TemplateError(.runtime, "\(name)() needs a mapping, not \(initial.typeName)")
                }
            }
            for (key, value) in args.keyword { fields[key] = value }
            return name == "dict" ? .object(fields) : .namespace(Namespace(fields))
        case "raise_exception":
            let message = args.positional.first?.renderedString ?? ""
            throw TemplateError(.raised, message)
        case "strftime_now":
            guard case .string(let format)? = args.positional.first else {
                throw TemplateError(.runtime, "strftime_now() needs a format string")
            }
            return .string(try Self.strftimeNow(format))
        default:
            throw TemplateError(.runtime, "'\(name)' is undefined")
        }
    }

    /// Python's `datetime.now().strftime(format)`: C `strftime` on the local time.
    static func strftimeNow(_ format: String) throws(TemplateError) -> String {
        guard format.utf8.count <= 1024, !format.utf8.contains(0) else {
            throw TemplateError(.runtime, "strftime_now(): format is too long or holds a NUL character")
        }
        var now = time(nil)
        var parts = tm()
        guard localtime_r(&now, &parts) != nil else { throw TemplateError(.runtime, "strftime_now(): no local time") }
        var buffer = [CChar](repeating: 0, count: 4096)
        let written = strftime(&buffer, buffer.count, format, &parts)
        if written == 0 && !format.isEmpty { return "" }
        return String(decoding: buffer[..<written].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
