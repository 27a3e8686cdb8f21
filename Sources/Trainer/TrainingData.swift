import Foundation

/// How JSONL lines become training examples.
public struct DataOptions: Sendable, Equatable {
    /// Longest example in tokens.
    public var maxSequenceLength = 2048
    /// Cut over-long examples to `maxSequenceLength` instead of skipping them.
    public var truncate = false
    /// Count and skip lines that do not parse instead of refusing the file.
    public var skipBadLines = false
    /// Fraction of examples held out for the eval loss (0 for none).
    public var evalSplit = 0.1
    public var seed: UInt64 = 42

    public init() {}
}

/// One kept example.
public struct TrainingExample: Sendable, Equatable {
    /// 1-based line of the JSONL file.
    public var line: Int
    public var sequence: TrainingSequence
    /// Supervised token ranges (one per assistant turn for conversations).
    public var spans: [Range<Int>]
    public var truncated: Bool
    /// The turns, for conversations (nil for tokenized records).
    public var turns: [ChatTurn]?
}

/// What loading found, for the summary: nothing is dropped without being counted here.
public struct DataStats: Sendable, Equatable {
    public var lines = 0
    public var blankLines = 0
    /// (line, reason) of lines that did not parse.
    public var badLines: [(line: Int, reason: String)] = []
    public var emptySkipped = 0
    public var tooLongSkipped = 0
    public var truncated = 0
    public var kept = 0
    public var tokens = 0
    public var supervisedTokens = 0
    public var longest = 0
    public var trainExamples = 0
    public var evalExamples = 0

    public static func == (a: DataStats, b: DataStats) -> Bool {
        a.lines == b.lines && a.blankLines == b.blankLines && a.badLines.map(\.line) == b.badLines.map(\.line)
            && a.emptySkipped == b.emptySkipped && a.tooLongSkipped == b.tooLongSkipped && a.truncated == b.truncated
            && a.kept == b.kept && a.tokens == b.tokens && a.supervisedTokens == b.supervisedTokens
    }
}

/// A supervision problem that makes training pointless or wrong (the template's fault, not the data's).
public struct SupervisionProblem: Sendable, Equatable {
    public var line: Int
    public var message: String
}

/// A loaded data set: examples, their split, statistics and the file's hash.
public struct TrainingData: Sendable {
    public var examples: [TrainingExample]
    public var train: [TrainingSequence]
    public var eval: [TrainingSequence]
    public var stats: DataStats
    public var problems: [SupervisionProblem]
    /// sha256 of the file's bytes.
    public var sha256: String

    /// Loads `path` (JSONL). Conversations need `renderer`; tokenized records are checked against `vocabularySize`.
    public static func load(path: String, renderer: ConversationRenderer?, vocabularySize: Int,
                            options: DataOptions) throws(TrainerError) -> TrainingData {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainerError("cannot read data file '\(path)'") }
        return try load(bytes: [UInt8](data), name: path, renderer: renderer, vocabularySize: vocabularySize, options: options)
    }

    public static func load(bytes: [UInt8], name: String, renderer: ConversationRenderer?, vocabularySize: Int,
                            options: DataOptions) throws(TrainerError) -> TrainingData {
        guard options.maxSequenceLength >= 2 else { throw TrainerError("--max-seq-len must be at least 2") }
        guard options.evalSplit >= 0, options.evalSplit < 1 else { throw TrainerError("--eval-split must be in [0, 1)") }
        var stats = DataStats()
        var examples: [TrainingExample] = []
        var problems: [SupervisionProblem] = []
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        for (index, raw) in lines.enumerated() {
            let lineNumber = index + 1
            var line = Array(raw)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if lineNumber == 1 && line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
            stats.lines += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { stats.blankLines += 1; continue }
            let record: TrainingRecord
            do {
                record = try TrainingRecord.parse(line)
            } catch {
                stats.badLines.append((lineNumber, error.message))
                continue
            }
            do {
                if let example = try makeExample(record, line: lineNumber, renderer: renderer, vocabularySize: vocabularySize,
                                                 options: options, stats: &stats, problems: &problems) {
                    examples.append(example)
                }
            } catch {
                stats.badLines.append((lineNumber, error.message))
            }
        }
        if !stats.badLines.isEmpty && !options.skipBadLines {
            let shown = stats.badLines.prefix(10).map { "  line \($0.line): \($0.reason)" }.joined(separator: "\n")
            let more = stats.badLines.count > 10 ? "\n  … and \(stats.badLines.count - 10) more" : ""
            throw TrainerError("'\(name)': \(stats.badLines.count) bad line(s):\n\(shown)\(more)\n"
                               + "(fix them, or pass --skip-bad-lines to count and skip them)")
        }
        // Example ids: position among kept examples (stable across runs).
        for i in examples.indices { examples[i].sequence.exampleID = i }
        stats.kept = examples.count
        stats.tokens = examples.reduce(0) { $0 + $1.sequence.tokens.count }
        stats.supervisedTokens = examples.reduce(0) { $0 + $1.sequence.supervisedCount }
        stats.longest = examples.map(\.sequence.tokens.count).max() ?? 0

        var evalCount = 0
        if options.evalSplit > 0 && examples.count >= 2 {
            evalCount = min(examples.count - 1, max(1, Int((options.evalSplit * Double(examples.count)).rounded())))
        }
        let order = SplitMix64.permutation(examples.count, seed: SplitMix64.derive(options.seed, 0x5E11))
        let evalSet = Set(order.prefix(evalCount))
        let train = examples.indices.filter { !evalSet.contains($0) }.map { examples[$0].sequence }
        let eval = examples.indices.filter { evalSet.contains($0) }.map { examples[$0].sequence }
        stats.trainExamples = train.count
        stats.evalExamples = eval.count
        return TrainingData(examples: examples, train: train, eval: eval, stats: stats, problems: problems,
                            sha256: SHA256.hex(bytes))
    }

    private static func makeExample(_ record: TrainingRecord, line: Int, renderer: ConversationRenderer?, vocabularySize: Int,
                                    options: DataOptions, stats: inout DataStats,
                                    problems: inout [SupervisionProblem]) throws(TrainerError) -> TrainingExample? {
        var ids: [Int32]
        var spans: [Range<Int>]
        var turns: [ChatTurn]?
        switch record {
        case .conversation(let t):
            // Nothing to learn: no assistant turn, or only empty ones.
            let assistant = t.filter { $0.role == "assistant" }
            if assistant.isEmpty || assistant.allSatisfy({ $0.content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }) {
                stats.emptySkipped += 1
                return nil
            }
            guard let renderer else { throw TrainerError("conversation records need the model's chat template") }
            let rendered = try renderer.render(t)
            ids = rendered.ids
            spans = rendered.spans
            turns = t
            for (k, span) in spans.enumerated() {
                if span.isEmpty {
                    problems.append(SupervisionProblem(line: line, message: "assistant turn \(k + 1) has no supervised token"))
                } else if !renderer.isTurnEnd(ids[span.upperBound - 1]) {
                    problems.append(SupervisionProblem(
                        line: line, message: "assistant turn \(k + 1): the token that ends the turn is not supervised "
                            + "(last supervised token is \(ids[span.upperBound - 1]))"))
                }
            }
        case .tokenized(let i, let labels):
            ids = i
            for id in i where id < 0 || Int(id) >= vocabularySize {
                throw TrainerError("token id \(id) is outside the vocabulary (0..<\(vocabularySize))")
            }
            spans = []
            var k = 0
            while k < labels.count {
                if labels[k] != -100 {
                    let s = k
                    while k < labels.count && labels[k] != -100 { k += 1 }
                    spans.append(s..<k)
                } else { k += 1 }
            }
            if spans.allSatisfy({ $0 == 0..<1 }) || spans.isEmpty {
                stats.emptySkipped += 1
                return nil
            }
        }
        var truncated = false
        if ids.count > options.maxSequenceLength {
            guard options.truncate else {
                stats.tooLongSkipped += 1
                return nil
            }
            ids = Array(ids.prefix(options.maxSequenceLength))
            spans = spans.compactMap { s in
                let clipped = s.clamped(to: 0..<ids.count)
                return clipped.isEmpty ? nil : clipped
            }
            truncated = true
        }
        var supervised = [Bool](repeating: false, count: ids.count)
        for s in spans { for k in s where k > 0 { supervised[k] = true } }
        let sequence = TrainingSequence(tokens: ids, supervised: supervised, exampleID: 0)
        if sequence.supervisedCount == 0 {
            // Truncation cut every supervised token (or the record had nothing trainable after position 0).
            if truncated { stats.tooLongSkipped += 1 } else { stats.emptySkipped += 1 }
            return nil
        }
        if truncated { stats.truncated += 1 }
        return TrainingExample(line: line, sequence: sequence, spans: spans, truncated: truncated, turns: turns)
    }

    /// Throws when an example would train on nothing or leave out a turn's end token: the template and the
    /// supervision disagree, and a model trained so would not learn to stop.
    public func checkSupervision() throws(TrainerError) {
        guard !problems.isEmpty else { return }
        let shown = problems.prefix(10).map { "  line \($0.line): \($0.message)" }.joined(separator: "\n")
        let more = problems.count > 10 ? "\n  … and \(problems.count - 10) more" : ""
        throw TrainerError("refusing to train: \(problems.count) supervision problem(s):\n\(shown)\(more)\n"
                           + "(run with --explain to see how examples are rendered and masked)")
    }
}
