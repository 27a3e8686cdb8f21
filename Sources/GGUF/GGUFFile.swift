/// A GGUF file (versions 2 and 3), memory-mapped. Metadata and tensor infos are parsed
/// eagerly and checked; tensor data stays in the mapping until asked for.
public final class GGUFFile: Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order (writers and `--dump` keep it).
    public let metadataKeys: [String]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    public let dataOffset: Int
    public let mapping: MappedFile
    private let tensorIndex: [String: Int]

    /// Limits that keep a corrupt header from asking for absurd work.
    static let maxTensors = 1 << 20
    static let maxMetadata = 1 << 20
    static let maxDims = 4
    static let maxArrayDepth = 8

    public convenience init(path: String) throws(GGUFError) {
        try self.init(mapping: MappedFile(path: path))
    }

    public init(mapping: MappedFile) throws(GGUFError) {
        self.mapping = mapping
        self.path = mapping.path
        var r = ByteReader(mapping.bytes)
        let magic = try r.read(UInt32.self, "magic")
        guard magic == 0x4655_4747 else {  // "GGUF" little-endian
            throw GGUFError("'\(mapping.path)' is not a GGUF file (bad magic)")
        }
        version = try r.read(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            throw GGUFError("unsupported GGUF version \(version) (supported: 2, 3)")
        }
        let tensorCount = try r.read(UInt64.self, "tensor count")
        let kvCount = try r.read(UInt64.self, "metadata count")
        guard tensorCount <= UInt64(Self.maxTensors) else { throw GGUFError("absurd tensor count \(tensorCount)") }
        guard kvCount <= UInt64(Self.maxMetadata) else { throw GGUFError("absurd metadata count \(kvCount)") }

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        for i in 0..<Int(kvCount) {
            let key = try r.readString("metadata key \(i)")
            let rawType = try r.read(UInt32.self, "type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw GGUFError("metadata '\(key)' has unknown value type \(rawType)")
            }
            let value = try Self.readValue(&r, type: type, key: key, depth: 0)
            if metadata.updateValue(value, forKey: key) == nil { keys.append(key) }
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard let v = a.int, v > 0, v <= 1 << 16, v & (v - 1) == 0 else {
                throw GGUFError("general.alignment must be a power of two, got \(a)")
            }
            alignment = v
        }
        self.alignment = alignment

        var infos: [(name: String, shape: [Int], type: GGMLType, offset: Int, bytes: Int)] = []
        infos.reserveCapacity(Int(tensorCount))
        for i in 0..<Int(tensorCount) {
            let name = try r.readString("tensor \(i) name")
            let nDims = try r.read(UInt32.self, "dimensions of '\(name)'")
            guard nDims >= 1, nDims <= UInt32(Self.maxDims) else {
                throw GGUFError("tensor '\(name)' has \(nDims) dimensions (1 to \(Self.maxDims) allowed)")
            }
            var shape: [Int] = []
            var elements = 1
            for _ in 0..<Int(nDims) {
                let d = try r.read(UInt64.self, "shape of '\(name)'")
                guard d <= UInt64(Int32.max) else { throw GGUFError("tensor '\(name)' has absurd dimension \(d)") }
                guard d > 0 else { throw GGUFError("tensor '\(name)' has a dimension of 0") }
                shape.append(Int(d))
                let (e, o) = elements.multipliedReportingOverflow(by: Int(d))
                guard !o, e <= 1 << 40 else { throw GGUFError("tensor '\(name)' is absurdly large") }
                elements = e
            }
            let rawType = try r.read(UInt32.self, "type of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw GGUFError("tensor '\(name)' has unknown ggml type \(rawType)")
            }
            guard shape[0] % type.blockElements == 0, let bytes = type.byteCount(elements: elements) else {
                throw GGUFError("tensor '\(name)': row of \(shape[0]) is not a whole number of \(type) blocks")
            }
            let offset = try r.read(UInt64.self, "offset of '\(name)'")
            guard offset <= UInt64(Int.max / 2) else { throw GGUFError("tensor '\(name)' has absurd offset \(offset)") }
            infos.append((name, shape, type, Int(offset), bytes))
        }

        let dataStart = (r.offset + alignment - 1) / alignment * alignment
        self.dataOffset = dataStart
        let fileSize = mapping.bytes.count
        var tensors: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        for info in infos {
            guard info.offset % alignment == 0 else {
                throw GGUFError("tensor '\(info.name)' offset \(info.offset) is not aligned to \(alignment)")
            }
            let start = dataStart + info.offset
            guard start <= fileSize, info.bytes <= fileSize - start else {
                throw GGUFError("tensor '\(info.name)' data (\(info.bytes) bytes at \(start)) lies beyond the end of the file (\(fileSize) bytes): truncated file?")
            }
            guard index[info.name] == nil else { throw GGUFError("duplicate tensor name '\(info.name)'") }
            index[info.name] = tensors.count
            tensors.append(GGUFTensorInfo(name: info.name, shape: info.shape, type: info.type, fileOffset: start, byteCount: info.bytes))
        }
        self.tensors = tensors
        self.tensorIndex = index
    }

    private static func readValue(_ r: inout ByteReader, type: GGUFValueType, key: String, depth: Int) throws(GGUFError) -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try r.read(UInt8.self, key))
        case .int8: return .int8(try r.read(Int8.self, key))
        case .uint16: return .uint16(try r.read(UInt16.self, key))
        case .int16: return .int16(try r.read(Int16.self, key))
        case .uint32: return .uint32(try r.read(UInt32.self, key))
        case .int32: return .int32(try r.read(Int32.self, key))
        case .uint64: return .uint64(try r.read(UInt64.self, key))
        case .int64: return .int64(try r.read(Int64.self, key))
        case .float32: return .float32(try r.readFloat(key))
        case .float64: return .float64(try r.readDouble(key))
        case .bool:
            let b = try r.read(UInt8.self, key)
            guard b <= 1 else { throw GGUFError("metadata '\(key)': bool byte is \(b)") }
            return .bool(b == 1)
        case .string: return .string(try r.readString(key))
        case .array:
            guard depth < maxArrayDepth else { throw GGUFError("metadata '\(key)': arrays nested too deeply") }
            let rawType = try r.read(UInt32.self, "element type of '\(key)'")
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw GGUFError("metadata '\(key)' has unknown array element type \(rawType)")
            }
            let count = try r.read(UInt64.self, "length of '\(key)'")
            // Every element takes at least one byte, so a longer count is a lie.
            guard count <= UInt64(r.remaining) else {
                throw GGUFError("metadata '\(key)' claims \(count) elements, more than the file holds")
            }
            var values: [GGUFValue] = []
            values.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                values.append(try readValue(&r, type: elementType, key: key, depth: depth + 1))
            }
            return .array(elementType, values)
        }
    }

    // MARK: - Lookup

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    public func string(_ key: String) -> String? { metadata[key]?.string }
    public func int(_ key: String) -> Int? { metadata[key]?.int }
    public func double(_ key: String) -> Double? { metadata[key]?.double }
    public func bool(_ key: String) -> Bool? { metadata[key]?.bool }

    /// The raw bytes of a tensor, inside the mapping (valid while this file lives).
    public func data(of info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: mapping.bytes[info.fileOffset..<info.fileOffset + info.byteCount])
    }

    /// The tensor as f32, row-major with ne0 contiguous.
    public func dequantize(_ info: GGUFTensorInfo) throws(GGUFError) -> [Float] {
        try Dequantize.toFloat(data(of: info), type: info.type, count: info.elementCount, name: info.name)
    }
}
