import XCTest
@testable import Tokenizer
final class TokenizerSmokeTests: XCTestCase { func testNothing() {} }
