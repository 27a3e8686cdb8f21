import Adapters
import Engine
import Foundation
import HTTP
import JSON
import OpenAI
import Synchronization
import Tokenizer

/// Which API shape a generation answers in.
enum CompletionKind: Sendable { case chat, text }

/// Turns one request's engine events into its HTTP response: SSE chunks as they come when
/// streaming, one JSON body at the end otherwise. Lives from submission to `.finished`; called
/// on the engine thread, so it only formats and hands bytes to the responder.
///
/// `@unchecked Sendable`: the mutable fields are touched only from the engine thread's
/// callback (events of one request arrive in order on that one thread).
final class GenerationResponder: @unchecked Sendable {
    let kind: CompletionKind
    let responder: HTTPResponder
    let stream: Bool
    let includeUsage: Bool
    let wantLogprobs: Bool
    let id: String
    let created: Int64
    let modelName: String
    let tokenizer: Tokenizer
    let onFinish: @Sendable (GenerationSummary, Int) -> Void   // summary, HTTP status

    private var text = ""
    private var logprobs: [TokenLogprob] = []
    private var chatChunks: ChatCompletionChunkBuilder
    private var textChunks: TextCompletionChunkBuilder

    init(kind: CompletionKind, responder: HTTPResponder, stream: Bool, includeUsage: Bool, wantLogprobs: Bool,
         modelName: String, tokenizer: Tokenizer, onFinish: @escaping @Sendable (GenerationSummary, Int) -> Void) {
        self.kind = kind
        self.responder = responder
        self.stream = stream
        self.includeUsage = includeUsage
        self.wantLogprobs = wantLogprobs
        self.id = ResponseID.make(prefix: kind == .chat ? "chatcmpl" : "cmpl")
        self.created = Int64(Date().timeIntervalSince1970)
        self.modelName = modelName
        self.tokenizer = tokenizer
        self.onFinish = onFinish
        chatChunks = ChatCompletionChunkBuilder(id: id, created: created, model: modelName, includeUsage: includeUsage)
        textChunks = TextCompletionChunkBuilder(id: id, created: created, model: modelName, includeUsage: includeUsage)
    }

    /// Sends the response head (and the role chunk) of a streaming response.
    func begin() {
        guard stream else { return }
        responder.startStream(status: 200, headers: [("Content-Type", ServerSentEvents.contentType),
                                                     ("Cache-Control", "no-cache")])
        if kind == .chat { responder.send(ServerSentEvents.event(chatChunks.roleChunk())) }
    }

    func handle(_ event: GenerationEvent) {
        switch event {
        case .delta(let delta):
            let lp = wantLogprobs ? delta.tokens.map(tokenLogprob) : nil
            if stream {
                if delta.text.isEmpty && (lp?.isEmpty ?? true) { return }
                let chunk = kind == .chat ? chatChunks.contentChunk(delta.text, logprobs: lp)
                                          : textChunks.textChunk(delta.text, logprobs: lp)
                responder.send(ServerSentEvents.event(chunk))
            } else {
                text += delta.text
                if let lp { logprobs += lp }
            }
        case .finished(let summary):
            finish(summary)
        }
    }

    private func finish(_ summary: GenerationSummary) {
        let usage = Usage(promptTokens: summary.promptTokens, completionTokens: summary.completionTokens,
                          cachedTokens: summary.cachedPromptTokens)
        var status = 200
        switch summary.outcome {
        case .stop, .length:
            let reason: FinishReason = summary.outcome == .length ? .length : .stop
            if stream {
                let finishChunk = kind == .chat ? chatChunks.finishChunk(reason) : textChunks.finishChunk(reason)
                responder.send(ServerSentEvents.event(finishChunk))
                if includeUsage {
                    let usageChunk = kind == .chat ? chatChunks.usageChunk(usage) : textChunks.usageChunk(usage)
                    responder.send(ServerSentEvents.event(usageChunk))
                }
                responder.send(ServerSentEvents.done)
                responder.finish()
            } else {
                let body: JSONValue
                switch kind {
                case .chat:
                    body = ChatCompletion(id: id, created: created, model: modelName,
                                          choices: [.init(content: text, logprobs: wantLogprobs ? logprobs : nil, finishReason: reason)],
                                          usage: usage).json
                case .text:
                    body = TextCompletion(id: id, created: created, model: modelName, text: text,
                                          logprobs: wantLogprobs ? logprobs : nil, finishReason: reason, usage: usage).json
                }
                responder.respond(status: 200, headers: [("Content-Type", "application/json")], body: body.serialized())
            }
        case .cancelled:
            // The client went away (or the server is stopping): nothing useful to send.
            status = 499
            if stream { responder.finish() } else {
                let e = OpenAIError.serviceUnavailable("The request was cancelled because the server is shutting down.")
                responder.respond(status: e.status, headers: [("Content-Type", "application/json")], body: e.jsonBody)
            }
        case .error(let message):
            let e = OpenAIError.serverError("Generation failed: \(message)")
            status = e.status
            if stream {
                responder.send(ServerSentEvents.error(e))
                responder.send(ServerSentEvents.done)
                responder.finish()
            } else {
                responder.respond(status: e.status, headers: [("Content-Type", "application/json")], body: e.jsonBody)
            }
        }
        onFinish(summary, status)
    }

    private func tokenLogprob(_ t: SampledToken) -> TokenLogprob {
        func text(_ id: Int32) -> (String, [UInt8]) {
            let bytes = Array(tokenizer.tokenBytes(id))
            return (String(decoding: bytes, as: UTF8.self), bytes)
        }
        let (s, b) = text(t.id)
        let alternatives = t.topLogprobs.map { alt -> TokenLogprob.Alternative in
            let (s, b) = text(alt.id)
            return TokenLogprob.Alternative(token: s, bytes: b, logprob: Double(alt.logprob))
        }
        return TokenLogprob(token: s, bytes: b, logprob: Double(t.logprob ?? 0), topLogprobs: alternatives)
    }
}
