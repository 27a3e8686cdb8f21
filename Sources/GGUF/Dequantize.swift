/// Block formats to f32. Layouts follow ggml (ggml-common.h):
/// - Q4_0: f16 d, 16 bytes; element j (j < 16) is low nibble of byte j, element j+16 the high nibble; x = (q - 8)·d
/// - Q4_1: f16 d, f16 m, 16 bytes as Q4_0; x = q·d + m
/// - Q8_0: f16 d, 32 int8; x = q·d
public enum Dequantize {
    /// Converts `count` elements of `type` from `src` into a new array.
    public static func toFloat(_ src: UnsafeRawBufferPointer, type: GGMLType, count: Int, name: String = "tensor") throws(GGUFError) -> [Float] {
        guard type.canDequantize else { throw GGUFError("\(name): cannot convert \(type) to f32 (supported: f32, f16, bf16, q4_0, q4_1, q8_0)") }
        guard let bytes = type.byteCount(elements: count), bytes <= src.count else {
            throw GGUFError("\(name): \(count) elements of \(type) do not fit in \(src.count) bytes")
        }
        guard count > 0 else { return [] }  // an empty buffer may have no base address
        return [Float](unsafeUninitializedCapacity: count) { buf, initialized in
            run(src.baseAddress!, type: type, count: count, into: buf.baseAddress!)
            initialized = count
        }
    }

    /// Converts into caller memory. Caller guarantees `src` holds `count` elements of `type`
    /// and `dst` has room for `count` floats; `type.canDequantize` must be true.
    public static func run(_ src: UnsafeRawPointer, type: GGMLType, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32:
            dst.update(from: src.assumingMemoryBound(to: Float.self), count: count)
        case .f16:
            for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)) }
        case .bf16:
            for i in 0..<count {
                dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            }
        case .q4_0:
            for b in 0..<count / 32 {
                let block = src + b * 18
                let d = Float(block.loadUnaligned(as: Float16.self))
                let out = dst + b * 32
                for j in 0..<16 {
                    let q = block.load(fromByteOffset: 2 + j, as: UInt8.self)
                    out[j] = Float(Int(q & 0x0F) - 8) * d
                    out[j + 16] = Float(Int(q >> 4) - 8) * d
                }
            }
        case .q4_1:
            for b in 0..<count / 32 {
                let block = src + b * 20
                let d = Float(block.loadUnaligned(as: Float16.self))
                let m = Float(block.loadUnaligned(fromByteOffset: 2, as: Float16.self))
                let out = dst + b * 32
                for j in 0..<16 {
                    let q = block.load(fromByteOffset: 4 + j, as: UInt8.self)
                    out[j] = Float(q & 0x0F) * d + m
                    out[j + 16] = Float(q >> 4) * d + m
                }
            }
        case .q8_0:
            for b in 0..<count / 32 {
                let block = src + b * 34
                let d = Float(block.loadUnaligned(as: Float16.self))
                let out = dst + b * 32
                for j in 0..<32 {
                    out[j] = Float(block.load(fromByteOffset: 2 + j, as: Int8.self)) * d
                }
            }
        default:
            preconditionFailure("Dequantize.run called with \(type); callers check canDequantize")
        }
    }
}
