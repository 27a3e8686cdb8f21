/// The row permutation that llama.cpp's converter applies to `attn_q` / `attn_k` weights so that RoPE can
/// rotate adjacent pairs (interleaved layout) instead of the two halves of each head (Hugging Face layout).
///
/// Converter (`convert_hf_to_gguf.py`, `LlamaModel.permute`):
/// `w.reshape(n_head, 2, rows // n_head // 2, *rest).swapaxes(1, 2).reshape(w.shape)`,
/// with `n_head = n_head_kv` for k. Within each head of size `d`, GGUF row `2i + j` is HF row `j·d/2 + i`.
///
/// A PEFT `lora_B` for q_proj / k_proj is `[out, rank]` in HF order, so its rows need the same permutation
/// before it can be added to GGUF weights.
public enum RotaryPermutation {
    /// Hugging Face row order → GGUF row order. `matrix` is `[rows, columns]` row-major, `rows = heads · headDim`.
    public static func hfToGGUF(_ matrix: [Float], columns: Int, heads: Int) -> [Float] {
        permute(matrix, columns: columns, heads: heads, inverse: false)
    }

    /// GGUF row order → Hugging Face row order (the inverse of `hfToGGUF`).
    public static func ggufToHF(_ matrix: [Float], columns: Int, heads: Int) -> [Float] {
        permute(matrix, columns: columns, heads: heads, inverse: true)
    }

    private static func permute(_ matrix: [Float], columns: Int, heads: Int, inverse: Bool) -> [Float] {
        precondition(columns > 0 && heads > 0 && matrix.count % (columns * heads) == 0, "rotary permutation: bad sizes")
        let rows = matrix.count / columns
        let headDim = rows / heads
        precondition(headDim % 2 == 0, "rotary permutation: odd head size")
        let half = headDim / 2
        return [Float](unsafeUninitializedCapacity: matrix.count) { out, initialized in
            matrix.withUnsafeBufferPointer { src in
                for h in 0 ..< heads {
                    for i in 0 ..< half {
                        for j in 0 ..< 2 {
                            let ggufRow = h * headDim + 2 * i + j
                            let hfRow = h * headDim + j * half + i
                            let (from, to) = inverse ? (ggufRow, hfRow) : (hfRow, ggufRow)
                            for c in 0 ..< columns { out[to * columns + c] = src[from * columns + c] }
                        }
                    }
                }
            }
            initialized = matrix.count
        }
    }
}
