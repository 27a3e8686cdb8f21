import XCTest
@testable import Tokenizer

/// BPE on tiny hand-made vocabularies (ids 0...255 are the single bytes; merged tokens follow).
final class BPETests: XCTestCase {
    func testMergesLowestRankFirst() throws {
        // "abc": "b c" outranks "a b", so b+c merge first and "a bc" has no merge.
        let t = try tinyTokenizer(merges: ["b c", "a b"])
        XCTAssertEqual(t.encode("abc").map { t.tokenText($0)! }, ["a", "bc"])
        let u = try tinyTokenizer(merges: ["a b", "b c"])
        XCTAssertEqual(u.encode("abc").map { u.tokenText($0)! }, ["ab", "c"])
    }

    func testEqualRanksMergeLeftmostFirst() throws {
        let t = try tinyTokenizer(merges: ["a a"])
        XCTAssertEqual(t.encode("aaa").map { t.tokenText($0)! }, ["aa", "a"])
        XCTAssertEqual(t.encode("aaaaa").map { t.tokenText($0)! }, ["aa", "aa", "a"])
        let u = try tinyTokenizer(merges: ["a a", "aa aa"])
        XCTAssertEqual(u.encode("aaaaaaa").map { u.tokenText($0)! }, ["aaaa", "aa", "a"])
    }

    func testMergesChainAndUseTheByteAlphabet() throws {
        let t = try tinyTokenizer(merges: [spelled(" ") + " w", spelled(" w") + " o", "o r", spelled(" wo") + " r"])
        XCTAssertEqual(t.encode(" wor").map { t.tokenText($0)! }, [spelled(" wor")])
        XCTAssertEqual(t.decode(t.encode(" wor wo")), " wor wo")
    }

    func testMergesStayInsidePieces() throws {
        let t = try tinyTokenizer(merges: ["a b"])
        XCTAssertEqual(t.encode("a b").map { t.tokenText($0)! }, ["a", spelled(" "), "b"])
        XCTAssertEqual(t.encode("ab").map { t.tokenText($0)! }, ["ab"])
    }

    func testBytesWithoutMergesAreByteTokens() throws {
        let t = try tinyTokenizer()
        XCTAssertEqual(t.encode("é"), [0xC3, 0xA9])
        XCTAssertEqual(t.encode("\u{0}\n"), [0x00, 0x0A])
    }

    func testCacheGivesTheSameTokensAgain() throws {
        let t = try tinyTokenizer(merges: ["a b", "ab c", "c d"])
        let first = t.encode("abcd abcd abcd")
        XCTAssertEqual(t.encode("abcd abcd abcd"), first)
        XCTAssertEqual(first.map { t.tokenText($0)! }, ["abc", "d", spelled(" "), "abc", "d", spelled(" "), "abc", "d"])
    }

    func testMinHeapPopsInOrder() {
        var heap = MinHeap()
        var rng = SystemRandomNumberGenerator()
        let values = (0..<500).map { _ in UInt64.random(in: 0..<1000, using: &rng) }
        values.forEach { heap.push($0) }
        var popped = [UInt64]()
        while let v = heap.pop() { popped.append(v) }
        XCTAssertEqual(popped, values.sorted())
    }

    func testByteAlphabetIsABijection() {
        XCTAssertEqual(Set(ByteLevel.scalarForByte).count, 256)
        XCTAssertEqual(ByteLevel.scalarForByte[0x20], "Ġ")
        XCTAssertEqual(ByteLevel.scalarForByte[0x0A], "Ċ")
        XCTAssertEqual(ByteLevel.scalarForByte[0x41], "A")
        for b in 0..<256 {
            XCTAssertEqual(ByteLevel.bytes(of: String(ByteLevel.scalarForByte[b])), [UInt8(b)])
        }
    }
}
