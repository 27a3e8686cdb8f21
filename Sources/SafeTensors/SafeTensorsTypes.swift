// Types shared by the safetensors reader and writer.
//
// Format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
// N bytes of JSON, then the tensor data. The JSON maps each tensor name to
// `{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}` with offsets relative to the
// first byte after the header, and may hold a `"__metadata__"` map of strings to strings.

/// Element types this module reads. Anything else in a header is refused with an error naming the tensor.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case i64 = "I64"

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .f32, .i32: 4
        case .f16, .bf16: 2
        case .i64: 8
        }
    }

    /// True for the types `SafeTensorsFile.floats(_:)` converts.
    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16: true
        case .i32, .i64: false
        }
    }
}

/// One tensor as the header describes it, after validation.
public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    /// Row-major, last dimension contiguous (PyTorch order).
    public let shape: [Int]
    /// Byte range relative to the start of the data section (the header's `data_offsets`).
    public let dataOffsets: Range<Int>

    /// Product of `shape` (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A malformed or unreadable safetensors file. The message names the file and, where there is one, the tensor.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable {
    /// The file the error is about, if it came from a file.
    public let file: String?
    /// The tensor the error is about, if any.
    public let tensor: String?
    public let message: String

    public init(file: String?, tensor: String? = nil, _ message: String) {
        self.file = file
        self.tensor = tensor
        self.message = message
    }

    public var description: String {
        var parts: [String] = []
        if let file { parts.append("safetensors file '\(file)'") } else { parts.append("safetensors data") }
        if let tensor { parts.append("tensor '\(tensor)'") }
        return parts.joined(separator: ", ") + ": " + message
    }
}

// MARK: - Half-precision conversion

/// IEEE 754 binary16 bits to Float (exact; subnormals, infinities and NaN preserved).
@inlinable
public func halfBitsToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32((h >> 10) & 0x1f)
    let mantissa = UInt32(h & 0x3ff)
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 31 {
        return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}

/// bfloat16 bits to Float (the upper half of a binary32).
@inlinable
public func bfloat16BitsToFloat(_ b: UInt16) -> Float {
    Float(bitPattern: UInt32(b) << 16)
}
