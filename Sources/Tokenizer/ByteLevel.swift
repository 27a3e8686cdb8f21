/// GPT-2's reversible map between bytes and printable Unicode scalars: byte-level BPE
/// vocabularies spell every token in this alphabet (a space is "Ġ", a newline "Ċ").
enum ByteLevel {
    /// `scalar[b]`: the scalar that stands for byte `b`.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var extra: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(extra)!
                extra += 1
            }
        }
        return table
    }()

    /// The inverse of `scalarForByte`, indexed by scalar value (all are below 324).
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (b, s) in scalarForByte.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// The bytes a vocabulary string stands for. Scalars outside the byte alphabet (which a
    /// well-formed byte-level vocabulary never holds) stand for their own UTF-8 encoding.
    static func bytes(of token: String) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(token.utf8.count)
        for s in token.unicodeScalars {
            let v = Int(s.value)
            if v < byteForScalar.count, byteForScalar[v] >= 0 {
                out.append(UInt8(byteForScalar[v]))
            } else {
                out.append(contentsOf: String(s).utf8)
            }
        }
        return out
    }

    /// The vocabulary spelling of raw bytes.
    static func string(of bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(scalarForByte[Int(b)]) }
        return String(s)
    }
}
