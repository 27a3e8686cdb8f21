import XCTest
import JSON

final class JSONWriterTests: XCTestCase {
    func testCompactOutputAndEscapes() {
        let value: JSONValue = ["a": 1, "b": [true, nil, "x"], "c": ["d": 2.5]]
        XCTAssertEqual(value.jsonString, #"{"a":1,"b":[true,null,"x"],"c":{"d":2.5}}"#)
        let s = JSONValue.string("q\"b\\n\n\r\t\u{8}\u{c}\u{1}\u{1f}é😀/")
        XCTAssertEqual(s.jsonString, #""q\"b\\n\n\r\t\b\f\u0001\u001Fé😀/""#)
    }

    func testNumbers() {
        XCTAssertEqual(JSONValue.int(-12).jsonString, "-12")
        XCTAssertEqual(JSONValue.int(Int64.min).jsonString, "-9223372036854775808")
        XCTAssertEqual(JSONValue.number(0.1).jsonString, "0.1")
        XCTAssertEqual(JSONValue.number(1.0 / 3.0).jsonString, "0.3333333333333333")
        XCTAssertEqual(JSONValue.number(2).jsonString, "2.0")
        XCTAssertEqual(JSONValue.number(.nan).jsonString, "null")
        XCTAssertEqual(JSONValue.number(-.infinity).jsonString, "null")
        for d in [0.1, 1e-7, 123456789.125, 1e300, -2.5e-300, Double.leastNonzeroMagnitude, Double.greatestFiniteMagnitude] {
            let text = JSONValue.number(d).jsonString
            XCTAssertEqual(try JSONParser.parse(text).doubleValue, d, "\(text) must round-trip")
        }
    }

    func testRoundTripThroughParser() throws {
        let text = #"{"z":[1,2.25,-3e-05,"\u0000","\ud83d\ude00"],"a":{"b":{"c":[]}},"e":""}"#
        let value = try JSONParser.parse(text)
        XCTAssertEqual(try JSONParser.parse(value.serialized()), value)
        XCTAssertEqual(value.objectValue?.keys, ["z", "a", "e"], "key order is kept")
    }

    func testAccessors() {
        let value: JSONValue = ["i": 3, "d": 3.0, "f": 3.5, "s": "x", "n": nil]
        XCTAssertEqual(value["i"]?.intValue, 3)
        XCTAssertEqual(value["d"]?.intValue, 3, "integral doubles count as integers")
        XCTAssertNil(value["f"]?.intValue)
        XCTAssertEqual(value["f"]?.doubleValue, 3.5)
        XCTAssertNil(value["s"]?.doubleValue)
        XCTAssertEqual(value["n"]?.isNull, true)
        XCTAssertNil(value["missing"])
        XCTAssertEqual(JSONValue.int(2), JSONValue.number(2))
        XCTAssertEqual(value["s"]?.typeName, "string")
    }
}
