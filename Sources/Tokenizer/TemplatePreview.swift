import Jinja

/// The work behind `serve template`: parse the command's inputs, render or encode, and format
/// the result. Kept here so it is tested without running the executable.
public enum TemplatePreview {
    /// A JSON array of message objects.
    public static func messages(fromJSON text: String) throws(ChatTemplateError) -> [Value] {
        let value: Value
        do {
            value = try Value(jsonText: text)
        } catch {
            throw .invalidInput("messages are not valid JSON: \(error)")
        }
        guard case .array(let messages) = value else {
            throw .invalidInput("messages must be a JSON array of message objects, not \(value.pythonRepr.prefix(40))")
        }
        return messages
    }

    /// `name=value`: the value is read as JSON when it parses (`true`, `3`, `[...]`, `"text"`), and
    /// as a plain string otherwise (`date_string=26 Jul 2024`).
    public static func variable(_ assignment: String) throws(ChatTemplateError) -> (name: String, value: Value) {
        guard let equals = assignment.firstIndex(of: "=") else {
            throw .invalidInput("variable '\(assignment)' is not of the form name=value")
        }
        let name = String(assignment[..<equals])
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first),
              name.unicodeScalars.allSatisfy({ $0 == "_" || $0.properties.isAlphabetic || ("0"..."9").contains($0) }) else {
            throw .invalidInput("variable name '\(name)' is not an identifier")
        }
        let text = String(assignment[assignment.index(after: equals)...])
        let value = (try? Value(jsonText: text)) ?? .string(text)
        return (name, value)
    }

    /// The rendered prompt, or with `ids` its token ids as a JSON array (`[1, 9690, 198]`).
    public static func output(_ chat: ChatTemplate, messages: [Value], addGenerationPrompt: Bool,
                              variables: [String: Value], ids: Bool) throws(ChatTemplateError) -> String {
        guard ids else {
            return try chat.render(messages: messages, addGenerationPrompt: addGenerationPrompt, variables: variables)
        }
        let tokens = try chat.encode(messages: messages, addGenerationPrompt: addGenerationPrompt, variables: variables)
        return "[" + tokens.map(String.init).joined(separator: ", ") + "]"
    }
}
