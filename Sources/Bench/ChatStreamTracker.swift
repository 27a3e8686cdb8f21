import JSON

/// Reads the events of a streamed chat (or text) completion and keeps what the report needs:
/// when content arrived, the `usage` of the final chunk, an error event, and whether `[DONE]` came.
/// Pure: the caller passes the arrival time of each event.
public struct ChatStreamTracker: Sendable {
    public private(set) var chunkTimes: [UInt64] = []
    public private(set) var completionTokens: Int?
    public private(set) var promptTokens: Int?
    public private(set) var sawDone = false
    /// The message of an `{"error": …}` event, or why an event could not be read.
    public private(set) var failure: (kind: RequestErrorKind, detail: String)?

    public init() {}

    public mutating func consume(_ event: SSEEvent, at time: UInt64) {
        guard failure == nil else { return }
        if event.data == "[DONE]" {
            sawDone = true
            return
        }
        let json: JSONValue
        do { json = try JSONParser.parse(event.data) } catch {
            failure = (.protocolError, "event is not JSON: \(error)")
            return
        }
        if let error = json["error"], !error.isNull {
            let message = error["message"]?.stringValue ?? error.stringValue ?? error.jsonString
            failure = (.streamError, message)
            return
        }
        if let usage = json["usage"], !usage.isNull {
            completionTokens = usage["completion_tokens"]?.intValue
            promptTokens = usage["prompt_tokens"]?.intValue
        }
        if let choices = json["choices"]?.arrayValue {
            for choice in choices {
                let text = choice["delta"]?["content"]?.stringValue ?? choice["text"]?.stringValue ?? ""
                if !text.isEmpty {
                    chunkTimes.append(time)
                    break
                }
            }
        }
    }

    /// Reads a whole (non-streamed) completion body.
    public mutating func consumeBody(_ body: [UInt8]) {
        let json: JSONValue
        do { json = try JSONParser.parse(body) } catch {
            failure = (.protocolError, "response body is not JSON: \(error)")
            return
        }
        if let error = json["error"], !error.isNull {
            failure = (.streamError, error["message"]?.stringValue ?? error.jsonString)
            return
        }
        guard json["choices"]?.arrayValue != nil else {
            failure = (.protocolError, "response has no 'choices'")
            return
        }
        completionTokens = json["usage"]?["completion_tokens"]?.intValue
        promptTokens = json["usage"]?["prompt_tokens"]?.intValue
        sawDone = true
    }
}
