import GGUF

/// Random quantized rows and activations shaped like the model's, for the dot-kernel tests
/// (QuantizedDotTests, MultiTokenDotTests).
enum QuantizedRows {
    static let rowLengths = [32, 64, 96, 576, 1536]

    enum Kind { case q4_0, q4_1, q8_0 }

    /// `blocks` random blocks of `kind`, with extreme blocks mixed in: all-0 and all-15 nibbles,
    /// int8 -128 and 127, very large, tiny (subnormal) and negative scales.
    static func randomRow(_ kind: Kind, blocks: Int, rng: inout SplitMix64) -> [UInt8] {
        var out: [UInt8] = []
        func f16(_ v: Float) { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        for b in 0..<blocks {
            let style = b % 7
            var d = Float.random(in: -0.05...0.05, using: &rng)
            if style == 3 { d = 60000 } else if style == 4 { d = 3e-7 }  // f16 subnormal
            switch kind {
            case .q4_0, .q4_1:
                f16(d)
                if kind == .q4_1 { f16(style == 5 ? -65504 : Float.random(in: -1...1, using: &rng)) }
                for _ in 0..<16 {
                    switch style {
                    case 1: out.append(0x00)
                    case 2: out.append(0xFF)
                    case 6: out.append(0xF0)
                    default: out.append(UInt8.random(in: 0...255, using: &rng))
                    }
                }
            case .q8_0:
                f16(d)
                for _ in 0..<32 {
                    switch style {
                    case 1: out.append(0x80)  // -128
                    case 2: out.append(0x7F)  // 127
                    case 6: out.append(UInt8.random(in: 0...1, using: &rng) == 0 ? 0x80 : 0x7F)
                    default: out.append(UInt8.random(in: 0...255, using: &rng))
                    }
                }
            }
        }
        return out
    }

    static let ggmlType: [Kind: GGMLType] = [.q4_0: .q4_0, .q4_1: .q4_1, .q8_0: .q8_0]

    /// Per-element magnitude of the terms the kernel adds (its natural error scale): the kernels
    /// compute d·Σq·x and m·Σx (or 8·d·Σx, 128·d·Σx) separately, so cancellation between them
    /// is measured against |q·d| + |m| rather than against |w|.
    static func termScale(_ kind: Kind, _ row: [UInt8], element e: Int) -> Double {
        let bb = [Kind.q4_0: 18, .q4_1: 20, .q8_0: 34][kind]!
        let blk = e / 32, j = e % 32
        func half(_ o: Int) -> Double {
            Double(Float16(bitPattern: UInt16(row[blk * bb + o]) | UInt16(row[blk * bb + o + 1]) << 8))
        }
        let d = abs(half(0))
        switch kind {
        case .q4_0:
            let byte = row[blk * bb + 2 + j % 16]
            return (Double(j < 16 ? byte & 15 : byte >> 4) + 8) * d
        case .q4_1:
            let byte = row[blk * bb + 4 + j % 16]
            return Double(j < 16 ? byte & 15 : byte >> 4) * d + abs(half(2))
        case .q8_0:
            return (Double(Int8(bitPattern: row[blk * bb + 2 + j])) + 128 + 128) * d
        }
    }

    /// Activations with an outlier per block, as real hidden states have (the case that makes
    /// one 16-bit part too coarse: the outlier sets the step for every small value).
    static func activations(_ n: Int, rng: inout SplitMix64) -> [Float] {
        var x = rng.floats(n)
        for b in 0..<n / 32 { x[b * 32 + Int.random(in: 0..<32, using: &rng)] = Float.random(in: 50...400, using: &rng) }
        return x
    }
}
