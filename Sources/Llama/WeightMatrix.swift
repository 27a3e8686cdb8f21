import GGUF
import Tensor

/// A weight matrix `[rows = out features, cols = in features]`, row-major f32, owned.
///
/// The f32 copy feeds sgemm for prefill and batched decode. Where the matrix came from a
/// quantized GGUF tensor, `quantized` keeps the original blocks (inside the mapped file)
/// for the memory-bound single-token path, which reads 5-6x fewer bytes.
///
/// `@unchecked Sendable`: the buffer is written once while loading and only read after.
public final class WeightMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let f32: UnsafeMutableBufferPointer<Float>   // [rows, cols]
    public let quantized: QuantizedMatrix?

    public init(rows: Int, cols: Int, values: UnsafeMutableBufferPointer<Float>, quantized: QuantizedMatrix? = nil) {
        precondition(values.count == rows * cols, "WeightMatrix: \(values.count) values for [\(rows), \(cols)]")
        self.rows = rows
        self.cols = cols
        self.f32 = values
        self.quantized = quantized
    }

    /// A matrix copied from `values` (row-major `[rows, cols]`).
    public convenience init(rows: Int, cols: Int, copying values: [Float]) {
        let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * cols)
        _ = buf.initialize(from: values)
        self.init(rows: rows, cols: cols, values: buf)
    }

    /// Loads a GGUF tensor stored `[ne0 = cols, ne1 = rows]`.
    public convenience init(file: GGUFFile, tensor info: GGUFTensorInfo) throws(LlamaError) {
        guard info.shape.count == 2 else { throw LlamaError("tensor '\(info.name)' is not a matrix: shape \(info.shape)") }
        guard info.type.canDequantize else { throw LlamaError("tensor '\(info.name)' has type \(info.type), which is not supported") }
        let cols = info.shape[0], rows = info.shape[1]
        let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * cols)
        let raw = file.data(of: info)
        Dequantize.run(raw.baseAddress!, type: info.type, count: rows * cols, into: buf.baseAddress!)
        let q = QuantizedMatrix(type: info.type, rows: rows, cols: cols, blocks: raw, owner: file)
        self.init(rows: rows, cols: cols, values: buf, quantized: q)
    }

    deinit { f32.deallocate() }
}

/// Quantized rows of a matrix, kept inside the memory-mapped GGUF (`owner` keeps it alive).
public struct QuantizedMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    public let blocks: UnsafeRawBufferPointer
    public let owner: AnyObject
    public var rowBytes: Int { cols / type.blockElements * type.blockBytes }
}
