/// Scratch memory for forward passes, grown on demand and reused, so a step allocates
/// nothing once the largest batch has been seen. One per engine thread.
public final class Workspace {
    private var buffers: [UnsafeMutableBufferPointer<Float>] = []

    public init() {}

    deinit { for b in buffers { b.deallocate() } }

    /// Buffer `slot` with room for at least `count` floats (contents undefined).
    func buffer(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<Float> {
        while buffers.count <= slot { buffers.append(.allocate(capacity: 1)) }
        if buffers[slot].count < count {
            buffers[slot].deallocate()
            buffers[slot] = .allocate(capacity: max(count, buffers[slot].count * 3 / 2))
        }
        return buffers[slot].baseAddress!
    }
}

/// Names of the workspace slots used by the forward pass.
enum Slot: Int {
    case x, xb, q, k, v, att, proj, hidden, hidden2, scores, partials, gatherIn, gatherOut, loraT, loraGEMMT, loraU, logitsIn
}

extension Workspace {
    func buffer(_ slot: Slot, _ count: Int) -> UnsafeMutablePointer<Float> { buffer(slot.rawValue, count) }
}
