import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes F32 safetensors files the way the reference implementation lays them out: tensors sorted by name, data
/// contiguous in that order, the JSON header padded with spaces to a multiple of 8 bytes.
public enum SafeTensorsWriter {
    /// One tensor to write.
    public struct Tensor: Sendable {
        public var name: String
        /// Row-major, last dimension contiguous.
        public var shape: [Int]
        /// `shape.reduce(1, *)` values.
        public var values: [Float]

        public init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// The complete file as bytes.
    public static func encode(_ tensors: [Tensor], metadata: [String: String] = [:]) throws(SafeTensorsError) -> Data {
        let sorted = tensors.sorted { $0.name < $1.name }
        var header = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let entries = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0] ?? ""))" }
            fields.append("\"__metadata__\":{" + entries.joined(separator: ",") + "}")
        }
        var offset = 0
        var previousName: String?
        for tensor in sorted {
            if tensor.name == "__metadata__" { throw SafeTensorsError(file: nil, tensor: tensor.name, "reserved tensor name") }
            if tensor.name == previousName { throw SafeTensorsError(file: nil, tensor: tensor.name, "duplicate tensor name") }
            previousName = tensor.name
            var count = 1
            for dim in tensor.shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dim)
                guard dim >= 0, !overflow else {
                    throw SafeTensorsError(file: nil, tensor: tensor.name, "invalid shape \(tensor.shape)")
                }
                count = product
            }
            guard count == tensor.values.count else {
                throw SafeTensorsError(file: nil, tensor: tensor.name,
                                       "shape \(tensor.shape) needs \(count) values, got \(tensor.values.count)")
            }
            let end = offset + 4 * count
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(tensor.name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += fields.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }

        var out = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for tensor in sorted {
            #if _endian(little)
            tensor.values.withUnsafeBytes { out.append(contentsOf: $0) }
            #else
            tensor.values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { out.append(contentsOf: $0) }
            #endif
        }
        return out
    }

    /// Encodes and writes to `path` atomically: a temporary file in the same folder, then rename(2).
    public static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to path: String) throws(SafeTensorsError) {
        let data = try encode(tensors, metadata: metadata)
        try writeAtomically(data, to: path)
    }

    /// Writes `data` to a temporary file beside `path` and renames it over `path`.
    public static func writeAtomically(_ data: Data, to path: String) throws(SafeTensorsError) {
        let url = URL(fileURLWithPath: path)
        let temp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(UInt32.random(in: 0 ... .max))")
        do {
            try data.write(to: temp)
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw SafeTensorsError(file: path, "cannot write temporary file (\(error.localizedDescription))")
        }
        if rename(temp.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temp)
            throw SafeTensorsError(file: path, "cannot move temporary file into place (\(reason))")
        }
    }
}

/// A JSON string literal for `s`.
func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
