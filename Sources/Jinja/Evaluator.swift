import Foundation

/// Expression evaluation with Python semantics: operators, attribute and item access, slicing, calls.
extension Interpreter {
    mutating func evaluate(_ expr: Expr) throws(TemplateError) -> Value {
        try step(at: expr.position)
        do {
            return try evaluateUnlocated(expr)
        } catch {
            throw error.located(expr.position)
        }
    }

    private mutating func evaluateUnlocated(_ expr: Expr) throws(TemplateError) -> Value {
        switch expr.kind {
        case .literal(let value):
            return value
        case .name(let name):
            return lookup(name)
        case .list(let items):
            var values: [Value] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try evaluate(item)) }
            return .array(values)
        case .dict(let pairs):
            var object = ObjectValue()
            for pair in pairs {
                let key = try evaluate(pair.key)
                object[key.keyString] = try evaluate(pair.value)
            }
            return .object(object)
        case .attribute(let base, let name):
            let value = try evaluateDefined(base)
            if Methods.isMethod(name, of: value) { return .function(Function(kind: .method(receiver: value, name: name))) }
            return attribute(name, of: value)
        case .item(let base, let index):
            let value = try evaluateDefined(base)
            return item(try evaluate(index), of: value)
        case .slice(let base, let start, let stop, let stepExpr):
            let value = try evaluateDefined(base)
            let bounds = try [start, stop, stepExpr].map { (e) throws(TemplateError) -> Value in
                guard let e else { return .none }
                return try evaluate(e)
            }
            return try slice(value, bounds[0], bounds[1], bounds[2])
        case .call(let callee, let arguments):
            return try evaluateCall(callee, arguments, at: expr.position)
        case .filter(let base, let filter):
            return try applyFilter(filter, to: try evaluate(base))
        case .test(let base, let name, let arguments, let negated):
            let value = try evaluate(base)
            let (positional, keyword) = try evaluate(arguments)
            let result = try applyTest(name, value, Args(positional, keyword, name: name))
            return .bool(result != negated)
        case .unary(let op, let operand):
            let value = try evaluate(operand)
            switch (op, value.numeric) {
            case ("-", .int(let i)?):
                let (negated, overflow) = Int(0).subtractingReportingOverflow(i)
                if overflow { throw TemplateError(.runtime, "integer overflow") }
                return .int(negated)
            case ("-", .double(let d)?): return .double(-d)
            case ("+", let number?): return number
            default: throw TemplateError(.runtime, "bad operand type for unary \(op): '\(value.typeName)'")
            }
        case .binary(let op, let lhs, let rhs):
            let left = try evaluate(lhs)
            let right = try evaluate(rhs)
            if op != "~" {
                if left.isUndefined { throw TemplateError(.runtime, "'\(lhs.sourceText)' is undefined", at: lhs.position) }
                if right.isUndefined { throw TemplateError(.runtime, "'\(rhs.sourceText)' is undefined", at: rhs.position) }
            }
            return try binary(op, left, right, at: expr.position)
        case .compare(let first, let chain):
            var left = try evaluate(first)
            for (op, rhs) in chain {
                let right = try evaluate(rhs)
                if !(try compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .and(let lhs, let rhs):
            let left = try evaluate(lhs)
            return left.isTruthy ? try evaluate(rhs) : left
        case .or(let lhs, let rhs):
            let left = try evaluate(lhs)
            return left.isTruthy ? left : try evaluate(rhs)
        case .not(let operand):
            return .bool(!(try evaluate(operand)).isTruthy)
        case .conditional(let condition, let then, let otherwise):
            if try evaluate(condition).isTruthy { return try evaluate(then) }
            guard let otherwise else { return .undefined }
            return try evaluate(otherwise)
        }
    }

    /// Evaluates an expression whose attribute or item is taken: Jinja fails on `x.y` and `x[0]`
    /// when `x` itself is undefined.
    mutating func evaluateDefined(_ expr: Expr) throws(TemplateError) -> Value {
        let value = try evaluate(expr)
        if value.isUndefined { throw TemplateError(.runtime, "'\(expr.sourceText)' is undefined", at: expr.position) }
        return value
    }

    mutating func evaluate(_ arguments: Arguments) throws(TemplateError) -> ([Value], [(String, Value)]) {
        var positional: [Value] = []
        for e in arguments.positional { positional.append(try evaluate(e)) }
        var keyword: [(String, Value)] = []
        for (name, e) in arguments.keyword { keyword.append((name, try evaluate(e))) }
        return (positional, keyword)
    }

    // MARK: - Access

    /// `value.name`: a dict key or namespace attribute; anything else is undefined.
    func attribute(_ name: String, of value: Value) -> Value {
        switch value {
        case .object(let o): return o[name] ?? .undefined
        case .namespace(let ns): return ns[name] ?? .undefined
        case .loop(let loop): return loop.attribute(name)
        default: return .undefined
        }
    }

    /// `value[index]`: list and string positions (negative from the end), dict keys; missing is undefined.
    func item(_ index: Value, of value: Value) -> Value {
        switch (value, index.numeric) {
        case (.array(let a), .int(let i)?):
            let j = i < 0 ? a.count + i : i
            return a.indices.contains(j) ? a[j] : .undefined
        case (.string(let s), .int(let i)?):
            let scalars = Array(s.unicodeScalars)
            let j = i < 0 ? scalars.count + i : i
            return scalars.indices.contains(j) ? .string(String(scalars[j])) : .undefined
        default:
            break
        }
        if case .object(let o) = value { return o[index.keyString] ?? .undefined }
        if case .string(let name) = index { return attribute(name, of: value) }
        return .undefined
    }

    /// Python slicing `value[start:stop:step]` of lists and strings.
    func slice(_ value: Value, _ start: Value, _ stop: Value, _ stride: Value) throws(TemplateError) -> Value {
        func bound(_ v: Value) throws(TemplateError) -> Int? {
            switch v {
            case .none, .undefined: return nil
            default:
                guard case .int(let i)? = v.numeric else {
                    throw TemplateError(.runtime, "slice indices must be integers or None")
                }
                return i
            }
        }
        let step = try bound(stride) ?? 1
        guard step != 0 else { throw TemplateError(.runtime, "slice step cannot be zero") }
        func indices(count: Int) throws(TemplateError) -> [Int] {
            func clamp(_ i: Int?, _ defaultValue: Int) -> Int {
                guard var i else { return defaultValue }
                if i < 0 { i = i < -count ? (step < 0 ? -1 : 0) : i + count }
                else if i >= count { i = step < 0 ? count - 1 : count }
                return i
            }
            let lo = clamp(try bound(start), step < 0 ? count - 1 : 0)
            let hi = clamp(try bound(stop), step < 0 ? -1 : count)
            var result: [Int] = []
            var i = lo
            while step > 0 ? i < hi : i > hi {
                result.append(i)
                let (next, overflow) = i.addingReportingOverflow(step)
                if overflow { break }
                i = next
            }
            return result
        }
        switch value {
        case .array(let a):
            return .array(try indices(count: a.count).map { a[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            return .string(PythonString.string(try indices(count: scalars.count).lazy.map { scalars[$0] }))
        default:
            // Jinja's getitem turns a failed subscript into an undefined value.
            return .undefined
        }
    }

    // MARK: - Calls

    mutating func evaluateCall(_ calleeExpr: Expr, _ arguments: Arguments,
                               at position: SourcePosition) throws(TemplateError) -> Value {
        if case .attribute(let receiverExpr, let name) = calleeExpr.kind {
            let receiver = try evaluateDefined(receiverExpr)
            if case .loop(let loop) = receiver, name == "cycle" {
                // `loop.cycle('odd', 'even')`: the argument at the iteration's position, cyclically.
                let (positional, _) = try evaluate(arguments)
                guard !positional.isEmpty else { throw TemplateError(.runtime, "no items for cycling given") }
                return positional[loop.index % positional.count]
            }
            if Methods.isMethod(name, of: receiver) {
                let (positional, keyword) = try evaluate(arguments)
                let args = Args(positional, keyword, name: name)
                if Methods.mutating.contains(name) {
                    // Hugging Face renders in Jinja's immutable sandbox, which refuses these.
                    throw TemplateError(.runtime, "access to attribute '\(name)' of '\(receiver.typeName)' object is unsafe")
                }
                return try callMethod(name, on: receiver, args)
            }
            let member = attribute(name, of: receiver)
            if member.isUndefined {
                throw TemplateError(.runtime, "'\(receiver.typeName)' object has no attribute '\(name)'")
            }
            return try call(member, arguments, at: position, name: name)
        }
        let callee = try evaluate(calleeExpr)
        var name = "object"
        if case .name(let n) = calleeExpr.kind { name = n }
        return try call(callee, arguments, at: position, name: name)
    }

    private mutating func call(_ callee: Value, _ arguments: Arguments, at position: SourcePosition,
                               name: String) throws(TemplateError) -> Value {
        guard case .function(let function) = callee else {
            if case .undefined = callee { throw TemplateError(.runtime, "'\(name)' is undefined") }
            throw TemplateError(.runtime, "'\(callee.typeName)' object is not callable")
        }
        let (positional, keyword) = try evaluate(arguments)
        switch function.kind {
        case .macro(let macro):
            return try callMacro(macro, positional: positional, keyword: keyword, at: position)
        case .builtin(let builtin):
            return try callBuiltin(builtin, Args(positional, keyword, name: builtin))
        case .method(let receiver, let method):
            return try callMethod(method, on: receiver, Args(positional, keyword, name: method))
        }
    }

    // MARK: - Operators

    mutating func binary(_ op: String, _ left: Value, _ right: Value, at position: SourcePosition) throws(TemplateError) -> Value {
        if op == "~" {
            let result = left.renderedString + right.renderedString
            try chargeAllocation(result.utf8.count, at: position)
            return .string(result)
        }
        if left.isUndefined || right.isUndefined {
            throw TemplateError(.runtime, "unsupported operand: undefined value in '\(op)' expression")
        }
        if let a = left.numeric, let b = right.numeric {
            return try Self.arithmetic(op, a, b)
        }
        switch (op, left, right) {
        case ("+", .string(let a), .string(let b)):
            try chargeAllocation(a.utf8.count + b.utf8.count, at: position)
            return .string(a + b)
        case ("+", .array(let a), .array(let b)):
            try chargeAllocation(a.count + b.count, at: position)
            return .array(a + b)
        case ("*", .string, _), ("*", _, .string), ("*", .array, _), ("*", _, .array):
            let (sequence, countValue) = left.numeric == nil ? (left, right) : (right, left)
            guard case .int(let n)? = countValue.numeric else { break }
            let times = max(n, 0)
            let unit = sequence.shallowCount
            let (size, overflow) = unit.multipliedReportingOverflow(by: times)
            if overflow { throw TemplateError(.limit, "repetition result too large") }
            try step(size / 8, at: position)
            if case .string(let s) = sequence { return .string(String(repeating: s, count: times)) }
            if case .array(let a) = sequence { return .array(Array([[Value]](repeating: a, count: times).joined())) }
        case ("%", .string(let format), _):
            let args: [Value] = if case .array(let a) = right { a } else { [right] }
            return .string(try Self.percentFormat(format, args))
        default:
            break
        }
        throw TemplateError(.runtime, "unsupported operand type(s) for \(op): '\(left.typeName)' and '\(right.typeName)'")
    }

    static func arithmetic(_ op: String, _ a: Value, _ b: Value) throws(TemplateError) -> Value {
        if case .int(let x) = a, case .int(let y) = b {
            func checked(_ r: (partialValue: Int, overflow: Bool)) throws(TemplateError) -> Value {
                if r.overflow { throw TemplateError(.runtime, "integer overflow in '\(op)'") }
                return .int(r.partialValue)
            }
            switch op {
            case "+": return try checked(x.addingReportingOverflow(y))
            case "-": return try checked(x.subtractingReportingOverflow(y))
            case "*": return try checked(x.multipliedReportingOverflow(by: y))
            case "/":
                guard y != 0 else { throw TemplateError(.runtime, "division by zero") }
                return .double(Double(x) / Double(y))
            case "//", "%":
                guard y != 0 else { throw TemplateError(.runtime, "integer division or modulo by zero") }
                let (q, overflow) = x.dividedReportingOverflow(by: y)
                if overflow { throw TemplateError(.runtime, "integer overflow in '\(op)'") }
                let r = x - q * y
                let floorQ = (r != 0 && (r < 0) != (y < 0)) ? q - 1 : q
                return op == "//" ? .int(floorQ) : .int(x - floorQ * y)
            case "**":
                if y < 0 { return .double(Foundation.pow(Double(x), Double(y))) }
                var result = 1
                var base = x
                var exponent = y
                while exponent > 0 {
                    if exponent & 1 == 1 { result = try checked(result.multipliedReportingOverflow(by: base)).intValue }
                    exponent >>= 1
                    if exponent > 0 { base = try checked(base.multipliedReportingOverflow(by: base)).intValue }
                }
                return .int(result)
            default: break
            }
        }
        guard let x = a.asDouble, let y = b.asDouble else {
            throw TemplateError(.runtime, "unsupported operand types for \(op)")
        }
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/":
            guard y != 0 else { throw TemplateError(.runtime, "float division by zero") }
            return .double(x / y)
        case "//":
            guard y != 0 else { throw TemplateError(.runtime, "float floor division by zero") }
            return .double((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw TemplateError(.runtime, "float modulo by zero") }
            let r = x.truncatingRemainder(dividingBy: y)
            return .double(r != 0 && (r < 0) != (y < 0) ? r + y : r)
        case "**": return .double(Foundation.pow(x, y))
        default: throw TemplateError(.runtime, "unknown operator '\(op)'")
        }
    }

    func compare(_ op: String, _ left: Value, _ right: Value) throws(TemplateError) -> Bool {
        switch op {
        case "==": return left == right
        case "!=": return left != right
        case "in": return try contains(right, left)
        case "not in": return !(try contains(right, left))
        default:
            let order = try Self.order(left, right)
            switch op {
            case "<": return order < 0
            case "<=": return order <= 0
            case ">": return order > 0
            default: return order >= 0
            }
        }
    }

    /// Python ordering: numbers with numbers, strings by code point, lists element-wise.
    static func order(_ left: Value, _ right: Value) throws(TemplateError) -> Int {
        if let a = left.numeric, let b = right.numeric {
            if case .int(let x) = a, case .int(let y) = b { return x < y ? -1 : x > y ? 1 : 0 }
            let x = a.asDouble ?? 0, y = b.asDouble ?? 0
            return x < y ? -1 : x > y ? 1 : 0
        }
        switch (left, right) {
        case (.string(let a), .string(let b)):
            var i = a.unicodeScalars.makeIterator(), j = b.unicodeScalars.makeIterator()
            while true {
                switch (i.next(), j.next()) {
                case (nil, nil): return 0
                case (nil, _): return -1
                case (_, nil): return 1
                case (let x?, let y?): if x != y { return x.value < y.value ? -1 : 1 }
                }
            }
        case (.array(let a), .array(let b)):
            for (x, y) in zip(a, b) where x != y { return try order(x, y) }
            return a.count < b.count ? -1 : a.count > b.count ? 1 : 0
        default:
            throw TemplateError(.runtime, "'<' not supported between instances of '\(left.typeName)' and '\(right.typeName)'")
        }
    }

    func contains(_ container: Value, _ element: Value) throws(TemplateError) -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let needle) = element else {
                throw TemplateError(.runtime, "'in <string>' requires string as left operand, not \(element.typeName)")
            }
            return PythonString.contains(s, needle)
        case .array(let a): return a.contains(element)
        case .object(let o): return o[element.keyString] != nil
        case .namespace(let ns): return ns[element.keyString] != nil
        case .undefined: return false
        default: throw TemplateError(.runtime, "argument of type '\(container.typeName)' is not iterable")
        }
    }

    /// Python `%` string formatting: `%s`, `%r`, `%d`/`%i`, `%f`/`%e`/`%g`, `%x`/`%o`, `%%`, with
    /// flags, width and precision.
    static func percentFormat(_ format: String, _ args: [Value]) throws(TemplateError) -> String {
        var out = ""
        var remaining = args[...]
        var chars = Array(format.unicodeScalars)[...]
        while let c = chars.popFirst() {
            guard c == "%" else {
                out.unicodeScalars.append(c)
                continue
            }
            var flags = ""
            while let d = chars.first, "-+ 0#".unicodeScalars.contains(d) {
                flags.unicodeScalars.append(d)
                chars.removeFirst()
            }
            var width = ""
            while let d = chars.first, ("0"..."9").contains(d), width.count < 4 {
                width.unicodeScalars.append(d)
                chars.removeFirst()
            }
            var precision: String? = nil
            if chars.first == "." {
                chars.removeFirst()
                var p = ""
                while let d = chars.first, ("0"..."9").contains(d), p.count < 3 {
                    p.unicodeScalars.append(d)
                    chars.removeFirst()
                }
                precision = p
            }
            guard let conversion = chars.popFirst() else { throw TemplateError(.runtime, "incomplete format") }
            if conversion == "%" {
                out += "%"
                continue
            }
            guard let arg = remaining.popFirst() else {
                throw TemplateError(.runtime, "not enough arguments for format string")
            }
            let spec = flags + width + (precision.map { "." + $0 } ?? "")
            switch conversion {
            case "s", "r":
                var text = conversion == "s" ? arg.renderedString : arg.pythonRepr
                if let precision, let n = Int(precision) { text = PythonString.string(text.unicodeScalars.prefix(n)) }
                let pad = max((Int(width) ?? 0) - text.unicodeScalars.count, 0)
                text = flags.contains("-") ? text + String(repeating: " ", count: pad)
                    : String(repeating: " ", count: pad) + text
                out += text
            case "d", "i", "x", "X", "o":
                guard let d = arg.asDouble, d.isFinite else {
                    throw TemplateError(.runtime, "%\(conversion) format: a real number is required, not \(arg.typeName)")
                }
                let i: Int
                if case .int(let exact)? = arg.numeric { i = exact } else {
                    guard let t = Int(exactly: d.rounded(.towardZero)) else { throw TemplateError(.runtime, "%d format: number too large") }
                    i = t
                }
                let letter = conversion == "i" ? "d" : String(conversion)
                out += String(format: "%" + spec + "l" + letter, i)
            case "f", "F", "e", "E", "g", "G":
                guard let d = arg.asDouble else {
                    throw TemplateError(.runtime, "%\(conversion) format: a real number is required, not \(arg.typeName)")
                }
                out += String(format: "%" + spec + String(conversion), d)
            default:
                throw TemplateError(.runtime, "unsupported format character '\(conversion)'")
            }
        }
        guard remaining.isEmpty else {
            throw TemplateError(.runtime, "not all arguments converted during string formatting")
        }
        return out
    }
}

extension Expr {
    /// A short rendering of the expression for error messages: `messages[0].role`.
    var sourceText: String {
        switch kind {
        case .name(let name): return name
        case .attribute(let base, let name): return base.sourceText + "." + name
        case .item(let base, let index):
            if case .literal(let v) = index.kind { return base.sourceText + "[" + v.pythonRepr + "]" }
            return base.sourceText + "[...]"
        case .call(let callee, _): return callee.sourceText + "(...)"
        case .literal(let v): return v.pythonRepr
        default: return "expression"
        }
    }
}

extension Value {
    /// The dict key a value stands for: strings as-is, other values as Python `str()`.
    var keyString: String {
        if case .string(let s) = self { return s }
        return renderedString
    }

    var intValue: Int {
        if case .int(let i) = self { return i }
        return 0
    }

    /// Size used to charge for allocations: characters of a string, elements of a list or dict.
    var shallowCount: Int {
        switch self {
        case .string(let s): s.utf8.count
        case .array(let a): a.count
        case .object(let o): o.count
        default: 1
        }
    }
}
