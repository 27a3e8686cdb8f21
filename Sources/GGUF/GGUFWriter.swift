import Foundation

/// Builds a GGUF (version 3) file: metadata in insertion order, then tensor infos,
/// then aligned tensor data. Used by tests to make tiny models and by `serve merge`.
public struct GGUFWriter {
    /// Set through the `general.alignment` key, so the file always states the alignment it uses.
    public private(set) var alignment = 32
    private var metadata: [(String, GGUFValue)] = []
    private var tensors: [(name: String, shape: [Int], type: GGMLType, data: [UInt8])] = []

    public init() {}

    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = metadata.firstIndex(where: { $0.0 == key }) { metadata[i].1 = value } else { metadata.append((key, value)) }
        // An alignment that is not a power of two is written as given (readers reject it) but not used.
        if key == "general.alignment", let a = value.int, a > 0, a <= 1 << 16, a & (a - 1) == 0 { alignment = a }
    }

    /// Adds a tensor from raw bytes already in `type`'s layout. `shape` is in GGUF order (ne0 first).
    public mutating func addTensor(name: String, shape: [Int], type: GGMLType, bytes: [UInt8]) {
        tensors.append((name, shape, type, bytes))
    }

    /// Adds f32 values (row-major, ne0 contiguous), stored as `type` (f32, f16 or q8_0).
    public mutating func addTensor(name: String, shape: [Int], values: [Float], as type: GGMLType = .f32) throws(GGUFError) {
        guard shape.reduce(1, *) == values.count else {
            throw GGUFError("tensor '\(name)': shape \(shape) does not hold \(values.count) values")
        }
        let bytes: [UInt8]
        switch type {
        case .f32: bytes = values.withUnsafeBytes { Array($0) }
        case .f16: bytes = values.map { Float16($0) }.withUnsafeBytes { Array($0) }
        case .q8_0: bytes = Quantize.q8_0(values)
        default: throw GGUFError("tensor '\(name)': writing \(type) is not supported (f32, f16, q8_0)")
        }
        tensors.append((name, shape, type, bytes))
    }

    /// The whole file as bytes.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func putString(_ s: String) { put(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8) }
        func putValue(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): put(x)
            case .int8(let x): put(x)
            case .uint16(let x): put(x)
            case .int16(let x): put(x)
            case .uint32(let x): put(x)
            case .int32(let x): put(x)
            case .uint64(let x): put(x)
            case .int64(let x): put(x)
            case .float32(let x): put(x.bitPattern)
            case .float64(let x): put(x.bitPattern)
            case .bool(let x): put(UInt8(x ? 1 : 0))
            case .string(let s): putString(s)
            case .array(let t, let items):
                put(t.rawValue)
                put(UInt64(items.count))
                for item in items { putValue(item) }
            }
        }
        func pad() { while out.count % alignment != 0 { out.append(0) } }

        put(UInt32(0x4655_4747))
        put(UInt32(3))
        put(UInt64(tensors.count))
        put(UInt64(metadata.count))
        for (key, value) in metadata {
            putString(key)
            put(value.type.rawValue)
            putValue(value)
        }
        var offset = 0
        for t in tensors {
            putString(t.name)
            put(UInt32(t.shape.count))
            for d in t.shape { put(UInt64(d)) }
            put(t.type.rawValue)
            put(UInt64(offset))
            offset += (t.data.count + alignment - 1) / alignment * alignment
        }
        pad()
        for t in tensors {
            out.append(contentsOf: t.data)
            pad()
        }
        return out
    }

    /// Writes the file atomically (temporary file, then rename).
    public func write(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        try Data(serialized()).write(to: tmp)
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(at: url) }
        try FileManager.default.moveItem(at: tmp, to: url)
    }
}

/// f32 to block formats, as ggml's reference quantizers do.
public enum Quantize {
    /// Q8_0: per block of 32, d = max|x| / 127, q = round(x / d).
    public static func q8_0(_ x: [Float]) -> [UInt8] {
        precondition(x.count % 32 == 0, "q8_0 needs whole blocks of 32")
        var out: [UInt8] = []
        out.reserveCapacity(x.count / 32 * 34)
        for b in 0..<x.count / 32 {
            let block = x[b * 32..<(b + 1) * 32]
            let amax = block.reduce(0) { max($0, abs($1)) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            withUnsafeBytes(of: Float16(d).bitPattern.littleEndian) { out.append(contentsOf: $0) }
            for v in block { out.append(UInt8(bitPattern: Int8((v * id).rounded()))) }
        }
        return out
    }
}
