import JSON

/// Server-sent-event framing of streamed responses, as OpenAI sends them.
public enum ServerSentEvents {
    /// `data: <compact json>\n\n`
    public static func event(_ json: JSONValue) -> [UInt8] {
        var out = Array("data: ".utf8)
        json.write(to: &out)
        out.append(contentsOf: [0x0A, 0x0A])
        return out
    }

    /// An error inside an already started stream: `data: {"error": {…}}\n\n`.
    public static func error(_ error: OpenAIError) -> [UInt8] { event(error.json) }

    /// The terminator: `data: [DONE]\n\n`.
    public static let done: [UInt8] = Array("data: [DONE]\n\n".utf8)

    /// The response's Content-Type.
    public static let contentType = "text/event-stream"
}
