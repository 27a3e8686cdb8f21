/// Where one tensor lives in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// GGUF order: `shape[0]` (ne0) is the contiguous dimension. A weight matrix
    /// `[out, in]` in row-major terms has shape `[in, out]` here.
    public let shape: [Int]
    public let type: GGMLType
    /// Offset of the data from the start of the file (already including the data section start).
    public let fileOffset: Int
    public let byteCount: Int

    public var elementCount: Int { shape.reduce(1, *) }
    /// Row-major view of a 2-D tensor: rows = ne1, columns = ne0.
    public var rows: Int { shape.count > 1 ? shape[1...].reduce(1, *) : 1 }
    public var columns: Int { shape.first ?? 1 }
}
