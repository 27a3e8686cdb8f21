import ArgumentParser
import Foundation
import GGUF
import Jinja
import Tokenizer

/// `serve template`: renders a conversation with a chat template and prints the prompt (or its
/// token ids), or the template's error with exit status 1.
struct TemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Render messages with a chat template and print the prompt or its token ids.",
        discussion: """
            The template comes from --template FILE.jinja or from the model's tokenizer.chat_template. \
            The tokenizer (for --ids, bos_token and eos_token) is the model's: --model, or the default model.
            """)

    @Option(help: "A Jinja chat template file (default: the model's own template).")
    var template: String?

    @Option(help: "Path to a GGUF model (default: the one in models/).")
    var model: String?

    @Option(help: "The conversation: a JSON array of {\"role\", \"content\"} objects, or @FILE to read it from a file.")
    var messages: String

    @Flag(help: "Render without the generation prompt (add_generation_prompt = false).")
    var noGenerationPrompt = false

    @Option(name: .customLong("var"), help: "A template variable name=value; value is JSON if it parses, else a string. Repeatable.")
    var variables: [String] = []

    @Flag(help: "Print the token ids instead of the text.")
    var ids = false

    func run() throws {
        let file = try GGUFFile(path: try DefaultModel.resolve(model))
        let tokenizer = try Tokenizer(gguf: file)
        let chat: ChatTemplate
        if let template {
            guard let source = try? String(contentsOfFile: template, encoding: .utf8) else {
                throw CommandError("cannot read template file: \(template)")
            }
            chat = try ChatTemplate(source: source, tokenizer: tokenizer)
        } else {
            chat = try ChatTemplate(gguf: file, tokenizer: tokenizer)
        }
        var messagesJSON = messages
        if messages.hasPrefix("@") {
            let path = String(messages.dropFirst())
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw CommandError("cannot read messages file: \(path)")
            }
            messagesJSON = text
        }
        var values: [String: Value] = [:]
        for assignment in variables {
            let (name, value) = try TemplatePreview.variable(assignment)
            values[name] = value
        }
        let output = try TemplatePreview.output(
            chat, messages: try TemplatePreview.messages(fromJSON: messagesJSON),
            addGenerationPrompt: !noGenerationPrompt, variables: values, ids: ids)
        // The prompt exactly as rendered (no newline added); ids end with one.
        FileHandle.standardOutput.write(Data((ids ? output + "\n" : output).utf8))
    }
}
