import Jinja

/// What can go wrong with a chat template. `renderFailed` is the one a server maps to a 400: the
/// template refused the conversation (for example with `raise_exception`), and `message` is the
/// template's own text.
public enum ChatTemplateError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The GGUF file has no `tokenizer.chat_template`.
    case missingTemplate(file: String)
    /// The template text does not compile (syntax error, unknown filter or test).
    case invalidTemplate(TemplateError)
    /// Rendering failed: `raise_exception(...)`, a type error, or a limit.
    case renderFailed(TemplateError)
    /// `supervisedSpans` could not find the tokens of an assistant turn: rendering the conversation
    /// up to that turn does not give a prefix of the full rendering.
    case unalignedTurn(messageIndex: Int, reason: String)
    /// Input for a template that cannot be used: messages that are not a JSON array, a malformed variable.
    case invalidInput(String)

    /// The bare message: for a render failure, exactly what the template said.
    public var message: String {
        switch self {
        case .missingTemplate(let file): "\(file) has no 'tokenizer.chat_template'"
        case .invalidTemplate(let error): error.description
        case .renderFailed(let error): error.message
        case .unalignedTurn(let index, let reason): "cannot locate assistant message \(index): \(reason)"
        case .invalidInput(let problem): problem
        }
    }

    public var description: String {
        switch self {
        case .missingTemplate, .unalignedTurn, .invalidInput: "chat template: " + message
        case .invalidTemplate(let error): "chat template does not compile: \(error)"
        case .renderFailed(let error): "chat template: \(error)"
        }
    }
}
