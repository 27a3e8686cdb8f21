/// One server-sent event: the joined `data:` lines and the optional `event:` name.
public struct SSEEvent: Sendable, Equatable {
    public var event: String?
    public var data: String

    public init(event: String? = nil, data: String) {
        self.event = event
        self.data = data
    }
}

/// Incremental `text/event-stream` parser (the WHATWG rules): lines end in CRLF, LF or CR, even when the
/// CR and LF arrive in different pieces; `data:` lines accumulate (joined by "\n"), one leading space after
/// the colon is dropped, `:` lines are comments, a blank line dispatches the event (if it has data).
/// `id` and `retry` are read and ignored. An event not closed by a blank line when the stream ends is
/// dropped, as the standard says.
public struct SSEParser: Sendable {
    /// Longest line kept (longer ones are a protocol error rather than unbounded memory).
    public static let maxLineBytes = 4 << 20

    private var line: [UInt8] = []
    private var dataLines: [String] = []
    private var hasData = false
    private var eventName: String?
    /// The previous piece ended in CR: a LF at the start of the next one belongs to it.
    private var skipLF = false

    public init() {}

    /// Consumes the next piece of the stream; returns the events it completed.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(HTTPClientError) -> [SSEEvent] {
        var events: [SSEEvent] = []
        for byte in bytes {
            if skipLF {
                skipLF = false
                if byte == 0x0A { continue }
            }
            if byte == 0x0A || byte == 0x0D {
                if byte == 0x0D { skipLF = true }
                if let event = endLine() { events.append(event) }
            } else {
                line.append(byte)
                if line.count > Self.maxLineBytes {
                    throw .protocolViolation("an event-stream line is longer than \(Self.maxLineBytes) bytes")
                }
            }
        }
        return events
    }

    private mutating func endLine() -> SSEEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            defer { dataLines.removeAll(); hasData = false; eventName = nil }
            guard hasData else { return nil }
            return SSEEvent(event: eventName, data: dataLines.joined(separator: "\n"))
        }
        if line[0] == UInt8(ascii: ":") { return nil }
        let field: String
        let value: String
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = String(decoding: line[..<colon], as: UTF8.self)
            var start = colon + 1
            if start < line.count && line[start] == UInt8(ascii: " ") { start += 1 }
            value = String(decoding: line[start...], as: UTF8.self)
        } else {
            field = String(decoding: line, as: UTF8.self)
            value = ""
        }
        switch field {
        case "data":
            dataLines.append(value)
            hasData = true
        case "event":
            eventName = value
        default:
            break  // id, retry and unknown fields
        }
        return nil
    }
}
