/// A cursor over untrusted bytes: every read checks the remaining length and throws
/// instead of reading past the end.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset: Int = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func require(_ n: Int, _ what: @autoclosure () -> String) throws(GGUFError) {
        guard n >= 0, n <= remaining else {
            throw GGUFError("truncated file: \(what()) needs \(n) bytes at offset \(offset), \(remaining) left")
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(GGUFError) -> T {
        try require(MemoryLayout<T>.size, what())
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += MemoryLayout<T>.size
        return v
    }

    mutating func readFloat(_ what: @autoclosure () -> String) throws(GGUFError) -> Float {
        Float(bitPattern: try read(UInt32.self, what()))
    }

    mutating func readDouble(_ what: @autoclosure () -> String) throws(GGUFError) -> Double {
        Double(bitPattern: try read(UInt64.self, what()))
    }

    /// A GGUF string: u64 length, then UTF-8 bytes (invalid UTF-8 is repaired, not trusted).
    mutating func readString(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
        let n = try read(UInt64.self, what())
        guard n <= UInt64(remaining) else {
            throw GGUFError("truncated file: \(what()) claims \(n) bytes at offset \(offset), \(remaining) left")
        }
        let count = Int(n)
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]), as: UTF8.self)
        offset += count
        return s
    }
}
