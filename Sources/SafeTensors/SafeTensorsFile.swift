import Foundation

/// A parsed safetensors file: the validated header plus the bytes (memory-mapped when read from a path).
///
/// Every check happens in the initializer, so a value of this type always describes tensors that lie inside the
/// data section, are contiguous and non-overlapping, and whose shape matches their byte size:
/// reading a tensor afterwards cannot go out of bounds.
public struct SafeTensorsFile: Sendable {
    /// Largest JSON header accepted. The reference implementation allows 100 MB.
    public static let maxHeaderBytes = 100_000_000

    /// Where the bytes came from (for messages); nil for in-memory data.
    public let path: String?
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// The tensors in data order (ascending offsets).
    public let tensors: [SafeTensorInfo]
    /// Total size of the file in bytes.
    public var byteSize: Int { data.count }

    private let data: Data
    /// Offset of the first data byte: 8 + header length.
    private let dataStart: Int
    private let index: [String: Int]

    /// Reads and validates the file at `path` (memory-mapped).
    public init(path: String) throws(SafeTensorsError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw SafeTensorsError(file: path, "cannot read file (\(error.localizedDescription))")
        }
        try self.init(data: data, path: path)
    }

    /// Validates in-memory safetensors bytes. `path` is only used in error messages.
    public init(data: Data, path: String? = nil) throws(SafeTensorsError) {
        func fail(_ message: String) -> SafeTensorsError { SafeTensorsError(file: path, message) }
        func fail(_ tensor: String, _ message: String) -> SafeTensorsError {
            SafeTensorsError(file: path, tensor: tensor, message)
        }
        guard data.count >= 8 else {
            throw fail("file is \(data.count) bytes, too short for the 8-byte header length (truncated?)")
        }
        let headerLength64 = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength64 <= UInt64(Self.maxHeaderBytes) else {
            throw fail("header length \(headerLength64) is absurd (limit \(Self.maxHeaderBytes) bytes); not a safetensors file?")
        }
        let headerLength = Int(headerLength64)
        guard headerLength >= 2 else { throw fail("header length \(headerLength) is too small for a JSON object") }
        guard 8 + headerLength <= data.count else {
            throw fail("header length \(headerLength) runs past the end of the \(data.count)-byte file (truncated?)")
        }
        let headerBytes = data.subdata(in: 8 ..< 8 + headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes)
        } catch {
            throw fail("header is not valid JSON (\(error.localizedDescription))")
        }
        guard let object = json as? [String: Any] else { throw fail("header is JSON but not an object") }

        let dataLength = data.count - 8 - headerLength
        var metadata: [String: String] = [:]
        var infos: [SafeTensorInfo] = []
        infos.reserveCapacity(object.count)
        for (name, value) in object {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (key, item) in map {
                    guard let string = item as? String else {
                        throw fail("__metadata__ value for '\(key)' is not a string")
                    }
                    metadata[key] = string
                }
                continue
            }
            infos.append(try Self.parseTensor(name: name, value: value, path: path))
        }

        // Offsets must tile the data section exactly, as the reference implementation requires.
        infos.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name)
            < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name) }
        var expectedStart = 0
        for info in infos {
            let range = info.dataOffsets
            if range.upperBound > dataLength {
                throw fail(info.name, "data_offsets [\(range.lowerBound), \(range.upperBound)] run past the end of the "
                    + "\(dataLength)-byte data section (truncated file?)")
            }
            if range.lowerBound < expectedStart {
                throw fail(info.name, "data_offsets [\(range.lowerBound), \(range.upperBound)] overlap the previous tensor, "
                    + "which ends at \(expectedStart)")
            }
            if range.lowerBound > expectedStart {
                throw fail(info.name, "data_offsets [\(range.lowerBound), \(range.upperBound)] leave a gap after offset "
                    + "\(expectedStart); tensors must be contiguous")
            }
            expectedStart = range.upperBound
        }
        guard expectedStart == dataLength else {
            throw fail("tensors cover \(expectedStart) bytes but the data section holds \(dataLength) bytes")
        }

        self.path = path
        self.metadata = metadata
        self.tensors = infos
        self.data = data
        self.dataStart = 8 + headerLength
        var index: [String: Int] = [:]
        for (i, info) in infos.enumerated() { index[info.name] = i }
        self.index = index
    }

    private static func parseTensor(name: String, value: Any, path: String?) throws(SafeTensorsError) -> SafeTensorInfo {
        func fail(_ message: String) -> SafeTensorsError { SafeTensorsError(file: path, tensor: name, message) }
        guard let entry = value as? [String: Any] else { throw fail("header entry is not an object") }
        guard let dtypeName = entry["dtype"] as? String else { throw fail("missing or non-string dtype") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw fail("unsupported dtype '\(dtypeName)' (supported: \(known))")
        }
        guard let shapeItems = entry["shape"] as? [Any] else { throw fail("missing or non-array shape") }
        var shape: [Int] = []
        var count = 1
        for item in shapeItems {
            guard let dim = exactInt(item), dim >= 0 else { throw fail("shape \(shapeItems) has a non-integer or negative dimension") }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw fail("shape \(shapeItems) overflows the element count") }
            shape.append(dim)
            count = product
        }
        guard let offsetItems = entry["data_offsets"] as? [Any], offsetItems.count == 2,
              let begin = exactInt(offsetItems[0]), let end = exactInt(offsetItems[1]) else {
            throw fail("data_offsets must be an array of two integers")
        }
        guard begin >= 0, end >= begin else { throw fail("data_offsets [\(begin), \(end)] are not an ascending pair") }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteWidth)
        guard !overflow, bytes == end - begin else {
            throw fail("shape \(shape) of \(dtype.rawValue) needs \(overflow ? "too many" : String(bytes)) bytes "
                + "but data_offsets [\(begin), \(end)] hold \(end - begin)")
        }
        return SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin ..< end)
    }

    // MARK: - Access

    /// The tensor called `name`, if present.
    public func tensor(named name: String) -> SafeTensorInfo? {
        index[name].map { tensors[$0] }
    }

    /// The tensor's raw little-endian bytes.
    public func bytes(of info: SafeTensorInfo) -> Data {
        data.subdata(in: dataStart + info.dataOffsets.lowerBound ..< dataStart + info.dataOffsets.upperBound)
    }

    /// The tensor's values as Float, row-major; F32, F16 and BF16 only.
    public func floats(_ info: SafeTensorInfo) throws(SafeTensorsError) -> [Float] {
        let count = info.elementCount
        let start = dataStart + info.dataOffsets.lowerBound
        switch info.dtype {
        case .f32:
            return data.withUnsafeBytes { raw in
                [Float](unsafeUninitializedCapacity: count) { out, initialized in
                    #if _endian(little)
                    // Bounds were checked when the header was parsed.
                    UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[start ..< start + 4 * count]))
                    #else
                    for i in 0 ..< count {
                        out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self)))
                    }
                    #endif
                    initialized = count
                }
            }
        case .f16, .bf16:
            let isHalf = info.dtype == .f16
            return data.withUnsafeBytes { raw in
                [Float](unsafeUninitializedCapacity: count) { out, initialized in
                    for i in 0 ..< count {
                        let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self))
                        out[i] = isHalf ? halfBitsToFloat(bits) : bfloat16BitsToFloat(bits)
                    }
                    initialized = count
                }
            }
        case .i32, .i64:
            throw SafeTensorsError(file: path, tensor: info.name, "is \(info.dtype.rawValue), expected a floating-point tensor")
        }
    }

    /// The values of the tensor called `name` as Float; throws if it is missing or not floating point.
    public func floats(named name: String) throws(SafeTensorsError) -> [Float] {
        guard let info = tensor(named: name) else { throw SafeTensorsError(file: path, tensor: name, "no such tensor") }
        return try floats(info)
    }

    /// The tensor's values as Int; I32 and I64 only.
    public func ints(_ info: SafeTensorInfo) throws(SafeTensorsError) -> [Int] {
        let count = info.elementCount
        let start = dataStart + info.dataOffsets.lowerBound
        switch info.dtype {
        case .i32:
            return data.withUnsafeBytes { raw in
                (0 ..< count).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: start + 4 * $0, as: Int32.self))) }
            }
        case .i64:
            return data.withUnsafeBytes { raw in
                (0 ..< count).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: start + 8 * $0, as: Int64.self))) }
            }
        case .f32, .f16, .bf16:
            throw SafeTensorsError(file: path, tensor: info.name, "is \(info.dtype.rawValue), expected an integer tensor")
        }
    }

    /// The values of the integer tensor called `name`.
    public func ints(named name: String) throws(SafeTensorsError) -> [Int] {
        guard let info = tensor(named: name) else { throw SafeTensorsError(file: path, tensor: name, "no such tensor") }
        return try ints(info)
    }
}

/// A JSON number that is exactly an integer (JSONSerialization hands numbers back as NSNumber).
private func exactInt(_ value: Any) -> Int? {
    if let int = value as? Int { return int }
    if let double = value as? Double, double.rounded() == double, abs(double) < 9.0e15 { return Int(double) }
    return nil
}
