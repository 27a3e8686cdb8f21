/// Decides which tokens go into the next forward pass (continuous batching with chunked prefill).
///
/// A pure state machine: it knows request ids and prompt lengths, nothing about the model,
/// threads or time, so it is tested by calling `nextStep()` and looking at the plan.
///
/// Policy of one step, within `tokenBudget` tokens:
/// 1. every running sequence that is decoding contributes its one token (decode first: it keeps
///    inter-token latency flat, and `maxRunning ≤ tokenBudget` guarantees they all fit);
/// 2. running sequences still prefilling continue with the next chunk of their prompt, oldest first;
/// 3. waiting requests are admitted in arrival order while fewer than `maxRunning` run and budget
///    is left, each starting with as much of its prompt as fits.
/// A chunk that completes a prompt asks for logits (its last row): that samples the first token,
/// and from the next step on the sequence decodes.
public struct Scheduler: Sendable {
    public enum Work: Sendable, Equatable {
        /// Prompt tokens `range` (indices into the prompt, positions equal indices).
        case prefill(Range<Int>)
        /// The last sampled token, at position `promptLength + generated - 1`.
        case decode
    }

    /// One sequence's share of a step; a step's items are in batch row order.
    public struct Item: Sendable, Equatable {
        public var id: RequestID
        public var work: Work
        /// Whether the step samples a token for this sequence (logits of its last row).
        public var samples: Bool

        public var tokenCount: Int {
            switch work {
            case .prefill(let r): r.count
            case .decode: 1
            }
        }
    }

    public struct Plan: Sendable, Equatable {
        public var items: [Item] = []
        /// Requests that moved from waiting to running in this step, in order.
        public var admitted: [RequestID] = []
        public var tokenCount: Int { items.reduce(0) { $0 + $1.tokenCount } }
        public var isEmpty: Bool { items.isEmpty }
    }

    struct Entry: Sendable, Equatable {
        let id: RequestID
        let promptLength: Int
        var prefilled = 0
        var decoding: Bool { prefilled == promptLength }
    }

    public let tokenBudget: Int
    public let maxRunning: Int
    private(set) var waiting: [Entry] = []  // arrival order
    private(set) var running: [Entry] = []  // admission order

    /// - Precondition: `1 ≤ maxRunning ≤ tokenBudget` (checked by `EngineConfiguration`).
    public init(tokenBudget: Int, maxRunning: Int) {
        precondition(maxRunning >= 1 && maxRunning <= tokenBudget, "Scheduler: need 1 ≤ maxRunning ≤ tokenBudget")
        self.tokenBudget = tokenBudget
        self.maxRunning = maxRunning
    }

    public var waitingCount: Int { waiting.count }
    public var runningCount: Int { running.count }
    public var isIdle: Bool { waiting.isEmpty && running.isEmpty }
    public var runningIDs: [RequestID] { running.map(\.id) }
    public var waitingIDs: [RequestID] { waiting.map(\.id) }

    /// Queues a request whose prompt has `promptLength` (≥ 1) tokens.
    public mutating func enqueue(_ id: RequestID, promptLength: Int) {
        precondition(promptLength >= 1, "Scheduler.enqueue: empty prompt")
        waiting.append(Entry(id: id, promptLength: promptLength))
    }

    /// Forgets a request (finished or cancelled), waiting or running. Returns whether it was known.
    @discardableResult
    public mutating func remove(_ id: RequestID) -> Bool {
        if let i = running.firstIndex(where: { $0.id == id }) {
            running.remove(at: i)
            return true
        }
        if let i = waiting.firstIndex(where: { $0.id == id }) {
            waiting.remove(at: i)
            return true
        }
        return false
    }

    /// Plans the next step and records it as done (prefill progress advances, admitted requests
    /// run). If the step then fails, the caller removes its requests. `cachedPrompt(id)` says, as
    /// a request is admitted, how many of its first prompt tokens (fewer than all) need no forward
    /// pass because their keys and values come from elsewhere (a reused prompt prefix).
    public mutating func nextStep(cachedPrompt: (RequestID) -> Int = { _ in 0 }) -> Plan {
        var plan = Plan()
        var budget = tokenBudget
        for entry in running where entry.decoding && budget > 0 {
            plan.items.append(Item(id: entry.id, work: .decode, samples: true))
            budget -= 1
        }
        for i in running.indices where !running[i].decoding && budget > 0 {
            plan.items.append(prefillChunk(&running[i], budget: &budget))
        }
        while budget > 0, running.count < maxRunning, !waiting.isEmpty {
            var entry = waiting.removeFirst()
            let cached = cachedPrompt(entry.id)
            precondition(cached >= 0 && cached < entry.promptLength, "Scheduler: \(cached) of \(entry.promptLength) prompt tokens cached")
            entry.prefilled = cached
            plan.items.append(prefillChunk(&entry, budget: &budget))
            plan.admitted.append(entry.id)
            running.append(entry)
        }
        return plan
    }

    private func prefillChunk(_ entry: inout Entry, budget: inout Int) -> Item {
        let n = min(entry.promptLength - entry.prefilled, budget)
        let range = entry.prefilled..<entry.prefilled + n
        entry.prefilled += n
        budget -= n
        return Item(id: entry.id, work: .prefill(range), samples: entry.decoding)
    }
}
