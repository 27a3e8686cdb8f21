import XCTest
@testable import OpenAI
final class OpenAISmokeTests: XCTestCase { func testNothing() {} }
