import Jinja
import Tokenizer

/// A conversation as the model sees it in training: token ids and, per assistant turn, the range of tokens the
/// loss covers (its content and the token that ends the turn).
public struct RenderedConversation: Sendable, Equatable {
    public var ids: [Int32]
    public var spans: [Range<Int>]

    public init(ids: [Int32], spans: [Range<Int>]) {
        self.ids = ids
        self.spans = spans
    }
}

/// Turns conversations into token ids and supervised spans. The trainer only talks to this; serving's chat
/// template is the real implementation (`ChatTemplateRenderer`), tests may use others.
public protocol ConversationRenderer: Sendable {
    func render(_ turns: [ChatTurn]) throws(TrainerError) -> RenderedConversation
    /// Identifies the template (for provenance): same fingerprint, same rendering.
    var fingerprint: String { get }
    /// True for tokens that end a turn (`<|im_end|>`, `<|eot_id|>`, eos, …).
    func isTurnEnd(_ id: Int32) -> Bool
    /// Text of a run of tokens (for `--explain`).
    func decode(_ ids: [Int32]) -> String
}

/// The base model's own chat template, exactly as the server renders prompts (`ChatTemplate`), with the
/// supervised spans it finds by prefix rendering.
public struct ChatTemplateRenderer: ConversationRenderer {
    public let template: ChatTemplate
    public let fingerprint: String

    public init(template: ChatTemplate) {
        self.template = template
        fingerprint = "sha256:" + SHA256.hex(template.source)
    }

    public func render(_ turns: [ChatTurn]) throws(TrainerError) -> RenderedConversation {
        let messages = turns.map { ChatTemplate.message($0.role, $0.content) }
        do {
            let chat = try template.supervisedSpans(messages: messages)
            return RenderedConversation(ids: chat.ids, spans: chat.spans)
        } catch {
            throw TrainerError("chat template: \(error.description)")
        }
    }

    public func isTurnEnd(_ id: Int32) -> Bool { template.tokenizer.endOfGenerationIDs.contains(id) }

    public func decode(_ ids: [Int32]) -> String { template.tokenizer.decode(ids) }
}
