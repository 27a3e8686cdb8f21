// Line-ending and chunk-framing checks that lenient http_parser builds skip.

/// Debian's libhttp-parser is built with `HTTP_PARSER_STRICT=0`, which accepts any byte where a chunk's
/// trailing CRLF belongs and treats `CR <anything>` as a line end in heads, chunk-size lines and trailers.
/// Those are request-smuggling shapes (a proxy in front may frame the bytes differently), so the bridge
/// runs every framing byte (everything http_parser does not hand to `on_body`) through this check:
/// a CR must be followed by LF, and the two bytes after each chunk's data must be CR LF.
struct StrictFraming: Equatable {
    /// The previous framing byte was a CR.
    private var afterCR = false
    /// A chunk's data just ended: the next framing byte must be CR.
    private var crDue = false

    /// Checks framing bytes in arrival order; false at the first violation.
    mutating func check(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for b in bytes {
            if crDue {
                guard b == 13 else { return false }
                crDue = false
                afterCR = true
            } else if afterCR {
                guard b == 10 else { return false }
                afterCR = false
            } else if b == 13 {
                afterCR = true
            }
        }
        return true
    }

    /// The data of one chunk ended; CR LF must come next.
    mutating func chunkDataEnded() {
        crDue = true
    }
}
