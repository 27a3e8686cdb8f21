import JSON

/// What to send as request `index`: chosen before sending, from the run's seed.
public struct RequestPlan: Sendable {
    public var index: Int
    public var model: String
    public var messages: JSONValue
    public var maxTokens: Int
    /// When it is due (nanoseconds from the run's start).
    public var scheduledAt: UInt64
}

/// Sends chat-completion requests over one connection and measures them. One per client thread.
public final class RequestExecutor {
    public let options: LoadOptions
    private let connection: HTTPConnection
    /// `MonotonicClock` value of the run's time zero.
    private let origin: UInt64

    public init(options: LoadOptions, origin: UInt64) {
        self.options = options
        self.origin = origin
        connection = HTTPConnection(target: options.url)
    }

    public func close() { connection.close() }

    /// The body of a plan's request.
    public static func body(for plan: RequestPlan, options: LoadOptions) -> [UInt8] {
        var object = JSONObject()
        object["model"] = .string(plan.model)
        object["messages"] = plan.messages
        object["max_tokens"] = JSONValue(plan.maxTokens)
        if options.stream {
            object["stream"] = true
            object["stream_options"] = ["include_usage": true]
        }
        if let t = options.temperature { object["temperature"] = .number(t) }
        for (key, value) in options.extraBody.members { object[key] = value }
        return JSONValue.object(object).serialized()
    }

    private var now: UInt64 { MonotonicClock.now() &- origin }

    /// Sends the request and waits for its end; never throws: every failure is in the outcome.
    public func execute(_ plan: RequestPlan) -> RequestOutcome {
        let body = Self.body(for: plan, options: options)
        var headers: [(String, String)] = [
            ("Content-Type", "application/json"),
            ("Accept", options.stream ? "text/event-stream" : "application/json"),
        ]
        if let key = options.apiKey { headers.append(("Authorization", "Bearer \(key)")) }

        var outcome = RequestOutcome(index: plan.index, model: plan.model, maxTokens: plan.maxTokens,
                                     scheduledAt: plan.scheduledAt, sentAt: now)
        let deadline = origin &+ outcome.sentAt &+ MonotonicClock.nanoseconds(options.timeout)
        var status = 0
        var errorBody: [UInt8] = []
        var whole: [UInt8] = []
        var sse = SSEParser()
        var tracker = ChatStreamTracker()
        var sseFailure: HTTPClientError?
        // A server may answer a streaming request with one JSON body (e.g. when it ignores "stream").
        var streaming = options.stream
        do throws(HTTPClientError) {
            let head = try connection.send(
                method: "POST", path: "/v1/chat/completions", headers: headers, body: body, deadline: deadline,
                onHead: { head in
                    status = head.status
                    if streaming, let type = head.header("Content-Type")?.lowercased(), type.hasPrefix("application/json") {
                        streaming = false
                    }
                },
                onBody: { [self] bytes in
                    guard status == 200 else {
                        if errorBody.count < 4096 { errorBody.append(contentsOf: bytes.prefix(4096 - errorBody.count)) }
                        return
                    }
                    if !streaming {
                        whole.append(contentsOf: bytes)
                        return
                    }
                    guard sseFailure == nil else { return }
                    do throws(HTTPClientError) {
                        let events = try sse.feed(bytes)
                        let t = now
                        for event in events { tracker.consume(event, at: t) }
                    } catch {
                        sseFailure = error
                    }
                })
            status = head.status
        } catch {
            outcome.endedAt = now
            outcome.error = RequestErrorKind(error)
            outcome.errorDetail = String(error.description.prefix(300))
            outcome.chunkTimes = tracker.chunkTimes
            outcome.firstTokenAt = tracker.chunkTimes.first
            return outcome
        }
        outcome.endedAt = now
        guard (200..<300).contains(status) else {
            outcome.error = .http(status)
            let response = AdminClient.Response(status: status, body: errorBody, json: try? JSONParser.parse(errorBody))
            outcome.errorDetail = String(response.message.prefix(300))
            return outcome
        }
        if !streaming { tracker.consumeBody(whole) }  // (also when a streaming request got a JSON body)
        outcome.chunkTimes = tracker.chunkTimes
        outcome.firstTokenAt = tracker.chunkTimes.first
        outcome.promptTokens = tracker.promptTokens
        if let sseFailure {
            outcome.error = .protocolError
            outcome.errorDetail = sseFailure.description
        } else if let failure = tracker.failure {
            outcome.error = failure.kind
            outcome.errorDetail = String(failure.detail.prefix(300))
        } else if !tracker.sawDone {
            outcome.error = .protocolError
            outcome.errorDetail = "the stream ended without data: [DONE]"
        }
        if let tokens = tracker.completionTokens {
            outcome.outputTokens = tokens
            outcome.usageReported = true
        } else {
            outcome.outputTokens = tracker.chunkTimes.count
        }
        return outcome
    }
}
