import Engine
import JSON

/// The sampling parameters shared by chat and text completions, as the client sent them
/// (nil = not given). `parameters` resolves the defaults in one place.
///
/// | field | accepted |
/// |---|---|
/// | `temperature` | 0…2 (0 = greedy) |
/// | `top_p` | (0, 1] |
/// | `top_k` | integer ≥ -1; 0 and -1 mean off (vLLM's convention) |
/// | `min_p` | 0…1 |
/// | `seed` | any 64-bit integer |
/// | `stop` | a string or a list of up to 4 non-empty strings |
/// | `frequency_penalty`, `presence_penalty` | -2…2 |
/// | `repetition_penalty` | > 0 (and at most 10) |
/// | `logit_bias` | object of up to 1024 token-id strings to -100…100 |
/// | `ignore_eos` | boolean (vLLM's and llama.cpp's extension): keep generating past the model's end tokens, up to `max_tokens` |
public struct SamplingOptions: Sendable, Equatable {
    public var temperature: Double?
    public var topP: Double?
    public var topK: Int?
    public var minP: Double?
    public var seed: Int64?
    /// Stop strings; the empty list means none.
    public var stop: [String] = []
    public var frequencyPenalty: Double?
    public var presencePenalty: Double?
    public var repetitionPenalty: Double?
    public var logitBias: [Int32: Double] = [:]
    /// Generate past the model's end-of-generation tokens (stop strings still apply): how
    /// benchmarks get completions of exactly `max_tokens`.
    public var ignoreEOS = false
    /// Report log-probabilities of chosen tokens.
    public var logprobs: Bool = false
    /// How many alternatives to report per token (0 when `logprobs` is false).
    public var topLogprobs: Int = 0

    /// Largest number of stop strings (OpenAI's limit).
    public static let maxStopStrings = 4
    /// Largest number of `logit_bias` entries we accept.
    public static let maxLogitBiasEntries = 1024

    public init() {}

    /// The request fields this type reads (logprobs fields differ per endpoint and are read there).
    static let fieldNames: Set<String> = [
        "temperature", "top_p", "top_k", "min_p", "seed", "stop",
        "frequency_penalty", "presence_penalty", "repetition_penalty", "logit_bias", "ignore_eos",
    ]

    init(reading reader: FieldReader) throws(OpenAIError) {
        temperature = try reader.number("temperature", in: 0...2)
        topP = try reader.number("top_p", in: 0...1, exclusiveLowerBound: true)
        topK = try reader.integer("top_k", in: -1...Int64(Int32.max)).map { Int($0) }
        minP = try reader.number("min_p", in: 0...1)
        seed = try reader.integer("seed", in: Int64.min...Int64.max)
        frequencyPenalty = try reader.number("frequency_penalty", in: -2...2)
        presencePenalty = try reader.number("presence_penalty", in: -2...2)
        repetitionPenalty = try reader.number("repetition_penalty", in: 0...10, exclusiveLowerBound: true)
        stop = try Self.readStop(reader)
        logitBias = try Self.readLogitBias(reader)
        ignoreEOS = try reader.bool("ignore_eos") ?? false
    }

    private static func readStop(_ reader: FieldReader) throws(OpenAIError) -> [String] {
        guard let value = reader.value("stop") else { return [] }
        let strings: [String]
        switch value {
        case .string(let s):
            strings = [s]
        case .array(let elements):
            guard elements.count <= maxStopStrings else {
                throw .invalidRequest("Invalid 'stop': at most \(maxStopStrings) stop sequences are allowed, but got \(elements.count).", param: "stop")
            }
            var collected: [String] = []
            for (i, element) in elements.enumerated() {
                guard case .string(let s) = element else { throw typeError("stop[\(i)]", expected: "a string", got: element) }
                collected.append(s)
            }
            strings = collected
        default:
            throw typeError("stop", expected: "a string or an array of strings", got: value)
        }
        if let empty = strings.firstIndex(where: \.isEmpty) {
            let param = value.stringValue != nil ? "stop" : "stop[\(empty)]"
            throw .invalidRequest("Invalid '\(param)': stop sequences must not be empty.", param: param)
        }
        return strings
    }

    private static func readLogitBias(_ reader: FieldReader) throws(OpenAIError) -> [Int32: Double] {
        guard let value = reader.value("logit_bias") else { return [:] }
        guard case .object(let object) = value else { throw typeError("logit_bias", expected: "an object", got: value) }
        guard object.count <= maxLogitBiasEntries else {
            throw .invalidRequest("Invalid 'logit_bias': at most \(maxLogitBiasEntries) entries are allowed, but got \(object.count).", param: "logit_bias")
        }
        var bias: [Int32: Double] = [:]
        for (key, entry) in object.members {
            guard !key.isEmpty, key.utf8.count <= 10, key.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let token = Int32(key) else {
                throw .invalidRequest("Invalid 'logit_bias': key '\(key)' is not a token id (a non-negative integer in a string).", param: "logit_bias")
            }
            bias[token] = try readNumber(entry, param: "logit_bias.\(key)", in: -100...100)
        }
        return bias
    }

    /// When generation ends, besides `max_tokens`.
    public var stopConditions: StopConditions {
        StopConditions(useModelEndTokens: !ignoreEOS, strings: stop)
    }

    /// The engine's sampling parameters with OpenAI's defaults filled in.
    public var parameters: SamplingParameters {
        SamplingParameters(
            temperature: Float(temperature ?? 1),
            topK: max(0, topK ?? 0),
            topP: Float(topP ?? 1),
            minP: Float(minP ?? 0),
            seed: seed.map { UInt64(bitPattern: $0) },
            repetitionPenalty: Float(repetitionPenalty ?? 1),
            frequencyPenalty: Float(frequencyPenalty ?? 0),
            presencePenalty: Float(presencePenalty ?? 0),
            logitBias: logitBias.mapValues { Float($0) },
            logprobs: logprobs,
            topLogprobs: logprobs ? topLogprobs : 0)
    }
}
