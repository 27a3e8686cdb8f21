import GGUF
import Jinja

/// A model's chat template: renders a conversation to the prompt text, encodes it to token ids,
/// and finds the tokens a fine-tuning run supervises. Used by the server and the trainer.
///
/// ```swift
/// let file = try GGUFFile(path: path)
/// let chat = try ChatTemplate(gguf: file, tokenizer: try Tokenizer(gguf: file))
/// let messages: [Value] = [["role": "user", "content": "Hi"]]
/// let prompt = try chat.render(messages: messages)            // text
/// let ids = try chat.encode(messages: messages)               // token ids
/// ```
///
/// Rendering follows Hugging Face's `apply_chat_template`: variables `messages`,
/// `add_generation_prompt`, `bos_token`, `eos_token`, plus any `variables` the caller passes
/// (`tools`, `date_string`, `enable_thinking`, ...), with trim_blocks and lstrip_blocks on.
///
/// Encoding differs from Hugging Face in one deliberate way: control tokens (`<|im_start|>`, ...)
/// that the template writes become their ids, but the same text inside message content, `tools`
/// or `documents` stays plain text, so a user cannot forge turns (see `ContentShield`).
/// Tokens of the other special kind, user-defined tokens (`<think>`, ...), are matched everywhere,
/// as Hugging Face does.
public struct ChatTemplate: Sendable {
    /// The template text.
    public let source: String
    /// Text of the BOS and EOS tokens, passed to the template as `bos_token` and `eos_token`.
    public let bosToken: String
    public let eosToken: String
    public let tokenizer: Tokenizer
    let template: Template
    let shield: ContentShield

    /// Variables whose strings come from the user and get the same protection as message content.
    public static let userDataVariables: Set<String> = ["tools", "documents"]

    /// The template stored in a GGUF file under `tokenizer.chat_template`, with the BOS and EOS
    /// token texts of `tokenizer`.
    public init(gguf file: GGUFFile, tokenizer: Tokenizer, options: TemplateOptions = .huggingFace) throws(ChatTemplateError) {
        guard let source = file.string("tokenizer.chat_template") else { throw .missingTemplate(file: file.path) }
        try self.init(source: source, tokenizer: tokenizer, options: options)
    }

    /// A template given as text. `bosToken`/`eosToken` default to the spellings of the
    /// tokenizer's BOS and EOS tokens (empty when it has none).
    public init(source: String, tokenizer: Tokenizer, bosToken: String? = nil, eosToken: String? = nil,
                options: TemplateOptions = .huggingFace) throws(ChatTemplateError) {
        do {
            template = try Template(source, options: options)
        } catch {
            throw .invalidTemplate(error)
        }
        self.source = source
        self.tokenizer = tokenizer
        self.bosToken = bosToken ?? tokenizer.bos.flatMap(tokenizer.tokenText) ?? ""
        self.eosToken = eosToken ?? tokenizer.eos.flatMap(tokenizer.tokenText) ?? ""
        var controlTexts: [String] = []
        for id in 0..<Int32(tokenizer.vocabularySize) where tokenizer.tokenType(id) == .control {
            if let text = tokenizer.tokenText(id), !text.isEmpty { controlTexts.append(text) }
        }
        shield = ContentShield(protectedTexts: controlTexts)
    }

    /// A message value as templates expect it: `{"role": role, "content": content}`.
    public static func message(_ role: String, _ content: String) -> Value {
        .object(ObjectValue([("role", .string(role)), ("content", .string(content))]))
    }

    // MARK: - Rendering

    /// The prompt text for `messages` (each usually `{"role": ..., "content": ...}`).
    public func render(messages: [Value], addGenerationPrompt: Bool = true,
                       variables: [String: Value] = [:]) throws(ChatTemplateError) -> String {
        try render(context(messages: .array(messages), addGenerationPrompt: addGenerationPrompt, variables: variables))
    }

    func context(messages: Value, addGenerationPrompt: Bool, variables: [String: Value]) -> [String: Value] {
        var context: [String: Value] = ["bos_token": .string(bosToken), "eos_token": .string(eosToken)]
        for (name, value) in variables { context[name] = value }
        context["messages"] = messages
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        return context
    }

    func render(_ context: [String: Value]) throws(ChatTemplateError) -> String {
        do {
            return try template.render(context)
        } catch {
            throw .renderFailed(error)
        }
    }

    // MARK: - Encoding

    /// How `encode` kept special-token text from message content plain.
    public enum ContentCheck: Sendable, Equatable {
        /// No user data held special-token text: the rendering was encoded as it is.
        case nothingToShield
        /// Shielding did not change the rendering; content's special-token text was encoded as plain text.
        case verified
        /// The template treated shielded content differently (it inspects special-token text), so
        /// the shielded rendering was used: `text` differs from `render(...)`.
        case shieldedRendering
    }

    /// A rendered and encoded prompt.
    public struct EncodedChat: Sendable, Equatable {
        /// The text `ids` encode.
        public let text: String
        public let ids: [Int32]
        public let contentCheck: ContentCheck
    }

    /// The token ids of the rendered prompt: special tokens written by the template become their
    /// ids, special-token text from message content stays plain text. No BOS is added beyond what
    /// the template writes.
    public func encode(messages: [Value], addGenerationPrompt: Bool = true,
                       variables: [String: Value] = [:]) throws(ChatTemplateError) -> [Int32] {
        try encodeChat(messages: messages, addGenerationPrompt: addGenerationPrompt, variables: variables).ids
    }

    /// `encode` with the text it encoded and how content was protected.
    public func encodeChat(messages: [Value], addGenerationPrompt: Bool = true,
                           variables: [String: Value] = [:]) throws(ChatTemplateError) -> EncodedChat {
        let prepared = try prepare(messages: messages, addGenerationPrompt: addGenerationPrompt, variables: variables)
        return EncodedChat(text: prepared.text, ids: tokenizer.encode(prepared.text, parseSpecial: true, plainAt: prepared.plainAt),
                           contentCheck: prepared.check)
    }

    /// The text to encode, the UTF-8 offsets where special-token text from user data starts
    /// (to be kept plain), and how that was established.
    func prepare(messages: [Value], addGenerationPrompt: Bool,
                 variables: [String: Value]) throws(ChatTemplateError) -> (text: String, plainAt: Set<Int>, check: ContentCheck) {
        let userData = Value.array([.array(messages)] + Self.userDataVariables.sorted().compactMap { variables[$0] })
        let plainContext = context(messages: .array(messages), addGenerationPrompt: addGenerationPrompt, variables: variables)
        let plain = try render(plainContext)
        guard !shield.isEmpty, shield.needsShield(userData) else { return (plain, [], .nothingToShield) }

        var firsts = Set<Unicode.Scalar>()
        shield.firstScalars(in: userData, into: &firsts)
        var used = Set<Unicode.Scalar>()
        ContentShield.privateUseScalars(in: source, into: &used)
        ContentShield.privateUseScalars(in: plain, into: &used)
        for value in plainContext.values { ContentShield.privateUseScalars(in: value, into: &used) }
        guard let sentinels = ContentShield.sentinels(for: firsts, avoiding: used) else {
            // Every private-use scalar is taken, so the template's own text cannot be told apart
            // from content; refuse rather than guess.
            throw .invalidInput("cannot protect special-token text in message content: no free private-use character")
        }
        var shieldedVariables = variables
        for name in Self.userDataVariables {
            if let value = variables[name] { shieldedVariables[name] = shield.shield(value, with: sentinels) }
        }
        let shieldedMessages = messages.map { shield.shield($0, with: sentinels) }
        let shielded = try render(context(messages: .array(shieldedMessages), addGenerationPrompt: addGenerationPrompt,
                                          variables: shieldedVariables))
        let (text, plainAt) = ContentShield.unshield(shielded, sentinels: sentinels)
        return (text, plainAt, text.utf8.elementsEqual(plain.utf8) ? .verified : .shieldedRendering)
    }

    // MARK: - Supervision

    /// A conversation encoded for training, with the token ranges that are trained on.
    public struct SupervisedChat: Sendable, Equatable {
        /// The whole conversation rendered without a generation prompt, encoded.
        public let ids: [Int32]
        /// One range of `ids` per assistant message, in order: its content tokens and the token
        /// that ends its turn (`<|im_end|>`, `<|eot_id|>`, eos, ...).
        public let spans: [Range<Int>]

        /// `ids` inside a span, -100 (ignored by the loss) elsewhere: the labels Hugging Face trainers use.
        public var labels: [Int32] {
            var labels = [Int32](repeating: -100, count: ids.count)
            for span in spans { for i in span { labels[i] = ids[i] } }
            return labels
        }
    }

    /// Encodes `messages` (without a generation prompt) and finds, for every assistant message,
    /// the tokens it contributes, by rendering prefixes of the conversation:
    ///
    /// - the turn starts where the conversation before it, rendered with the generation prompt,
    ///   stops agreeing with the conversation through it (normally: the prompt is a prefix; a
    ///   prompt that opens a `<think>` the rendered turn lacks agrees up to that point); what the
    ///   earlier messages render to with and without the generation prompt must lie before that start;
    /// - it ends where the conversation through it stops agreeing with the whole conversation
    ///   (normally: it is a prefix; templates that add an EOS when no generation prompt follows,
    ///   or rewrite earlier turns, agree up to that point);
    /// - the span is the tokens of the whole conversation from the start up to and including the
    ///   first end-of-turn token (`<|im_end|>`, `<|eot_id|>`, eos, ...), or to the end when there is none.
    ///
    /// Throws `.unalignedTurn` when earlier turns render differently once the turn is added, or
    /// the turn renders to nothing.
    public func supervisedSpans(messages: [Value], variables: [String: Value] = [:]) throws(ChatTemplateError) -> SupervisedChat {
        let full = try prepare(messages: messages, addGenerationPrompt: false, variables: variables)
        let ids = tokenizer.encode(full.text, parseSpecial: true, plainAt: full.plainAt)
        // Byte offset where each token starts; [ids.count] is the end.
        var offsets = [0]
        offsets.reserveCapacity(ids.count + 1)
        for id in ids { offsets.append(offsets[offsets.count - 1] + tokenizer.tokenBytes(id).count) }
        guard offsets.last == full.text.utf8.count else {
            throw .unalignedTurn(messageIndex: -1, reason: "the tokens of the conversation do not spell its text (bytes the vocabulary cannot encode)")
        }
        let fullBytes = Array(full.text.utf8)

        var spans: [Range<Int>] = []
        for (index, message) in messages.enumerated() {
            guard case .object(let fields) = message, case .string("assistant")? = fields["role"] else { continue }
            let through = index == messages.count - 1 ? full.text
                : try prepare(messages: Array(messages[...index]), addGenerationPrompt: false, variables: variables).text
            // An empty conversation may not render (templates read messages[0]): nothing precedes the turn.
            let prompt = index == 0
                ? ((try? prepare(messages: [], addGenerationPrompt: true, variables: variables))?.text ?? "")
                : try prepare(messages: Array(messages[..<index]), addGenerationPrompt: true, variables: variables).text
            let throughBytes = Array(through.utf8)
            let promptBytes = Array(prompt.utf8)
            let start = Self.commonPrefixLength(promptBytes, throughBytes)
            if index > 0 {
                // What the earlier messages render to with and without the generation prompt must
                // survive when this turn is added (it does unless the template rewrites earlier turns).
                let before = try prepare(messages: Array(messages[..<index]), addGenerationPrompt: false, variables: variables).text
                let agreed = Self.commonPrefixLength(Array(before.utf8), promptBytes)
                guard start >= agreed else {
                    throw .unalignedTurn(messageIndex: index, reason: "the conversation before it renders differently once it is added")
                }
            }
            let end = Self.commonPrefixLength(throughBytes, fullBytes)
            guard end > start else {
                throw .unalignedTurn(messageIndex: index, reason: "the conversation through it adds nothing after the generation prompt that the whole conversation keeps")
            }
            var first = offsets.firstIndex(where: { $0 >= start }) ?? ids.count
            first = min(first, ids.count)
            var last = first
            while last < ids.count, offsets[last] < end {
                last += 1
                if tokenizer.endOfGenerationIDs.contains(ids[last - 1]) { break }
            }
            spans.append(first..<last)
        }
        return SupervisedChat(ids: ids, spans: spans)
    }

    static func commonPrefixLength(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var n = 0
        while n < a.count, n < b.count, a[n] == b[n] { n += 1 }
        return n
    }
}
