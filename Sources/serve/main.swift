import Llama
import Foundation
let t0 = Date()
let model = try LlamaModel(path: CommandLine.arguments[1])
print("load", Date().timeIntervalSince(t0))
let ids = CommandLine.arguments[2].split(separator: ",").map { Int32($0)! }
let cache = model.makeCache()
var b = Batch()
let rows = b.add(ids, startingAt: 0, cache: cache, logits: false)
b.logitRows = Array(rows)
let ws = Workspace()
var logits: [Float] = []
var t1 = Date()
try model.forward(b, workspace: ws, logits: &logits)
print("forward", Date().timeIntervalSince(t1))
try Data(bytes: logits, count: logits.count * 4).write(to: URL(fileURLWithPath: "/tmp/out.bin"))
// decode timing
var tok: Int32 = 1
var l2: [Float] = []
t1 = Date()
for i in 0..<64 {
  var d = Batch(); d.add([tok], startingAt: ids.count + i, cache: cache, logits: true)
  try model.forward(d, workspace: ws, logits: &l2)
  tok = Int32(l2.indices.max(by: { l2[$0] < l2[$1] })!)
}
print("decode tok/s", 64 / Date().timeIntervalSince(t1))
let big = model.makeCache(); var pb = Batch(); pb.add((0..<512).map { Int32($0 % 1000 + 100) }, startingAt: 0, cache: big, logits: true)
t1 = Date(); try model.forward(pb, workspace: ws, logits: &l2); print("prefill 512 tok/s", 512 / Date().timeIntervalSince(t1))
