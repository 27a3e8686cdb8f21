import Adapters
import ArgumentParser
import Engine
import Foundation
import GGUF
import Jinja
import Llama
import Tokenizer

/// `serve generate --prompt "…"`: one completion through the Engine (the server's code path), streamed to
/// stdout; prompt and generation speed on stderr. The prompt is one user message rendered by the model's chat
/// template; `--messages` gives a whole conversation, `--raw` sends the text as is, `--token-ids` gives ids.
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Generate one completion through the engine and stream it to stdout.")

    @Option(help: "Prompt text: one user message, rendered by the model's chat template.")
    var prompt: String?

    @Flag(help: "Send --prompt as is, without the chat template (special tokens like <|im_start|> are recognised).")
    var raw = false

    @Option(help: #"A conversation as a JSON array, e.g. '[{"role":"user","content":"Hi"}]', rendered by the chat template."#)
    var messages: String?

    @Option(name: .customLong("token-ids"), help: "The prompt as comma-separated token ids, instead of --prompt.")
    var tokenIDs: String?

    @Option(help: "Path to a Llama-architecture GGUF model (default: the one in models/).")
    var model: String?

    @Option(help: "Kernel threads.")
    var threads: Int = 2

    @Option(help: "Most tokens to generate.")
    var maxTokens: Int = 256

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 1

    @Option(help: "Keep the k most likely tokens (0: off).")
    var topK: Int = 0

    @Option(help: "Nucleus sampling mass, in (0, 1].")
    var topP: Float = 1

    @Option(help: "Drop tokens below this fraction of the best token's probability, in [0, 1].")
    var minP: Float = 0

    @Option(help: "Seed for reproducible sampling.")
    var seed: UInt64?

    @Option(help: "Repetition penalty (> 0; 1: off).")
    var repetitionPenalty: Float = 1

    @Option(help: "Frequency penalty, in [-2, 2].")
    var frequencyPenalty: Float = 0

    @Option(help: "Presence penalty, in [-2, 2].")
    var presencePenalty: Float = 0

    @Option(help: "A stop string (repeatable).")
    var stop: [String] = []

    @Flag(help: "Do not stop at the model's end-of-generation tokens.")
    var ignoreEOS = false

    @Option(help: "A LoRA adapter (PEFT folder or GGUF LoRA file) applied unmerged (repeatable).")
    var lora: [String] = []

    @Option(help: "Scale for every --lora adapter.")
    var loraScale: Float = 1

    func validate() throws {
        guard [prompt != nil, messages != nil, tokenIDs != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --prompt, --messages and --token-ids")
        }
        if raw && prompt == nil { throw ValidationError("--raw applies to --prompt only") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1…256") }
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        guard temperature.isFinite, temperature >= 0 else { throw ValidationError("--temperature must be ≥ 0") }
        guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard (0...1).contains(minP) else { throw ValidationError("--min-p must be in [0, 1]") }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else { throw ValidationError("--repetition-penalty must be > 0") }
        guard (-2...2).contains(frequencyPenalty) else { throw ValidationError("--frequency-penalty must be in [-2, 2]") }
        guard (-2...2).contains(presencePenalty) else { throw ValidationError("--presence-penalty must be in [-2, 2]") }
        guard loraScale.isFinite else { throw ValidationError("--lora-scale must be finite") }
        if stop.contains("") { throw ValidationError("--stop strings must not be empty") }
    }

    func run() async throws {
        let path = try DefaultModel.resolve(model)
        let llama: LlamaModel
        let tokenizer: Tokenizer
        do {
            tokenizer = try Tokenizer(gguf: try GGUFFile(path: path))
            llama = try LlamaModel(path: path, threads: threads)
        } catch {
            throw CommandError("cannot load \(path): \(error)")
        }

        let ids = try promptIDs(tokenizer, modelPath: path)
        var adapters: [ScaledAdapter] = []
        for adapterPath in lora {
            let name = URL(fileURLWithPath: adapterPath).deletingPathExtension().lastPathComponent
            do {
                let file = try AdapterLoader.load(path: adapterPath, name: name, base: BaseModelShape(llama.config))
                adapters.append(ScaledAdapter(try file.makeLoRAAdapter(for: llama.config), scale: loraScale))
            } catch {
                throw CommandError(error.description)
            }
        }

        let sampling = SamplingParameters(
            temperature: temperature, topK: topK, topP: topP, minP: minP, seed: seed,
            repetitionPenalty: repetitionPenalty, frequencyPenalty: frequencyPenalty, presencePenalty: presencePenalty)
        let request = GenerationRequest(
            prompt: ids, sampling: sampling, stop: StopConditions(useModelEndTokens: !ignoreEOS, strings: stop),
            maxTokens: maxTokens, adapters: AdapterPayload(adapters: adapters)) { _ in }

        let engine: Engine
        do {
            engine = try Engine(model: llama, tokenizer: tokenizer)
        } catch {
            throw CommandError(error.description)
        }
        engine.start()
        defer { engine.stop(timeout: .zero) }
        let stream: AsyncStream<GenerationEvent>
        do {
            stream = try engine.submitStreaming(request).1
        } catch {
            throw CommandError(error.description)
        }

        var summary: GenerationSummary?
        for await event in stream {
            switch event {
            case .delta(let d):
                FileHandle.standardOutput.write(Data(d.text.utf8))
            case .finished(let s):
                summary = s
            }
        }
        FileHandle.standardOutput.write(Data("\n".utf8))
        guard let summary else { throw CommandError("the engine ended without a result") }
        report(summary)
        if case .error(let message) = summary.outcome { throw CommandError("generation failed: \(message)") }
    }

    private func promptIDs(_ tokenizer: Tokenizer, modelPath: String) throws -> [Int32] {
        if let tokenIDs {
            var ids: [Int32] = []
            for part in tokenIDs.split(separator: ",", omittingEmptySubsequences: false) {
                let trimmed = part.trimmingCharacters(in: .whitespaces)
                guard let id = Int32(trimmed) else { throw CommandError("--token-ids: '\(trimmed)' is not a token id") }
                ids.append(id)
            }
            return ids
        }
        if raw, let prompt {
            var ids = tokenizer.encode(prompt, parseSpecial: true)
            if tokenizer.addsBOS, let bos = tokenizer.bos { ids.insert(bos, at: 0) }
            return ids
        }
        let conversation: [Value]
        if let messages {
            let parsed: Value
            do { parsed = try Value(jsonText: messages) } catch { throw CommandError("--messages is not valid JSON: \(error)") }
            guard case .array(let list) = parsed else { throw CommandError("--messages must be a JSON array of messages") }
            conversation = list
        } else {
            conversation = [ChatTemplate.message("user", prompt ?? "")]
        }
        do {
            let template = try ChatTemplate(gguf: try GGUFFile(path: modelPath), tokenizer: tokenizer)
            return try template.encode(messages: conversation)
        } catch let error as ChatTemplateError {
            throw CommandError("\(error.description)\(prompt != nil ? " (use --raw to send the prompt as is)" : "")")
        } catch {
            throw CommandError("cannot read \(modelPath): \(error)")
        }
    }

    private func report(_ s: GenerationSummary) {
        let ttft = s.timeToFirstToken.map(seconds) ?? 0
        let generationTime = seconds(s.duration) - ttft
        var lines = ["finish: \(s.outcome.finishReason)\(detail(s.outcome))"]
        lines.append(String(format: "prompt: %d tokens in %.3f s (%.1f tokens/s, time to first token)",
                            s.promptTokens, ttft, ttft > 0 ? Double(s.promptTokens) / ttft : 0))
        let decoded = max(0, s.completionTokens - 1)
        lines.append(String(format: "generation: %d tokens in %.3f s (%.1f tokens/s after the first)",
                            s.completionTokens, generationTime, generationTime > 0 ? Double(decoded) / generationTime : 0))
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    private func detail(_ outcome: GenerationOutcome) -> String {
        switch outcome {
        case .stop(.token(let id)): " (token \(id))"
        case .stop(.string(let s)): " (string \(s.debugDescription))"
        case .error(let m): " (\(m))"
        default: ""
        }
    }

    private func seconds(_ d: Duration) -> Double {
        let (s, atto) = d.components
        return Double(s) + Double(atto) * 1e-18
    }
}
