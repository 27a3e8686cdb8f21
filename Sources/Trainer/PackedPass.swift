/// One sequence as the model trains on it: token ids and, per token, whether it is a label (predicted from the
/// token before it, so `supervised[0]` is always false).
public struct TrainingSequence: Sendable, Equatable {
    public var tokens: [Int32]
    public var supervised: [Bool]
    /// A stable identity (the example's index in the data set) that keys its dropout masks.
    public var exampleID: Int

    public init(tokens: [Int32], supervised: [Bool], exampleID: Int) {
        self.tokens = tokens
        self.supervised = supervised
        self.exampleID = exampleID
    }

    public var supervisedCount: Int { supervised.dropFirst().reduce(0) { $0 + ($1 ? 1 : 0) } }
}

/// Sequences laid end to end as the rows of one pass. Attention never crosses a sequence boundary.
struct PackedPass {
    let n: Int
    let tokens: [Int32]                 // [n]
    let positions: [Int]                // [n], 0-based within each sequence
    let sequenceRows: [Range<Int>]      // rows of each sequence
    let rowExample: [Int]               // [n] example id of each row (dropout keys)
    /// Rows whose next token is a label: row r predicts `target`.
    let predictions: [(row: Int, target: Int32)]
    let maxLength: Int

    init(_ sequences: [TrainingSequence]) {
        var tokens: [Int32] = [], positions: [Int] = [], ranges: [Range<Int>] = [], rowExample: [Int] = []
        var predictions: [(Int, Int32)] = []
        var maxLength = 0
        for s in sequences {
            let start = tokens.count
            tokens.append(contentsOf: s.tokens)
            positions.append(contentsOf: 0..<s.tokens.count)
            rowExample.append(contentsOf: repeatElement(s.exampleID, count: s.tokens.count))
            ranges.append(start..<tokens.count)
            maxLength = max(maxLength, s.tokens.count)
            for i in 1..<max(1, s.tokens.count) where i < s.supervised.count && s.supervised[i] {
                predictions.append((start + i - 1, s.tokens[i]))
            }
        }
        n = tokens.count
        self.tokens = tokens
        self.positions = positions
        sequenceRows = ranges
        self.rowExample = rowExample
        self.predictions = predictions
        self.maxLength = maxLength
    }
}
