import ArgumentParser
import Bench
import Foundation
import JSON

/// `serve adapters list|add|remove --url URL [--admin-key K]`: manages the adapters of a running server
/// through its admin API.
struct AdaptersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapters", abstract: "List, add or remove the adapters of a running server.",
        subcommands: [AdaptersListCommand.self, AdaptersAddCommand.self, AdaptersRemoveCommand.self])
}

/// The flags every `serve adapters` subcommand takes.
struct AdminConnectionOptions: ParsableArguments {
    @Option(help: "Server base URL.") var url: String = "http://127.0.0.1:8080"
    @Option(help: "Admin key (Authorization: Bearer), when the server requires one.") var adminKey: String?
    @Option(help: "Timeout in seconds (loading a large adapter can take a while).") var timeout: Double = 120
    @Flag(help: "Print the server's JSON response as is.") var json = false

    func client() throws -> AdminClient {
        let target: BenchURL
        do { target = try BenchURL(parsing: url) } catch { throw CommandError(error.message) }
        signal(SIGPIPE, SIG_IGN)
        return AdminClient(url: target, adminKey: adminKey, timeout: timeout)
    }

    /// Runs one call; a transport failure or a non-2xx status becomes a one-line error.
    func call(_ what: String, _ body: (AdminClient) throws(HTTPClientError) -> AdminClient.Response) throws -> AdminClient.Response {
        let admin = try client()
        defer { admin.close() }
        let response: AdminClient.Response
        do { response = try body(admin) } catch { throw CommandError("\(what): \(url): \(error)") }
        guard response.isSuccess else { throw CommandError("\(what): HTTP \(response.status): \(response.message)") }
        if json { print(String(decoding: response.body, as: UTF8.self)) }
        return response
    }
}

struct AdaptersListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the registered adapters.")
    @OptionGroup var connection: AdminConnectionOptions

    func run() throws {
        let response = try connection.call("list adapters") { admin throws(HTTPClientError) in try admin.list() }
        if connection.json { return }
        var entries: [JSONValue]? = response.json?["data"]?.arrayValue
        if entries == nil { entries = response.json?["adapters"]?.arrayValue }
        if entries == nil { entries = response.json?.arrayValue }
        guard let entries else {
            print(String(decoding: response.body, as: UTF8.self))
            return
        }
        if entries.isEmpty { print("no adapters") }
        for entry in entries {
            guard let object = entry.objectValue else {
                print(entry.stringValue ?? entry.jsonString)
                continue
            }
            let name = object["name"]?.stringValue ?? object["id"]?.stringValue ?? "?"
            var line = name
            for (key, value) in object.members where key != "name" && key != "id" && key != "object" {
                let text: String = value.stringValue ?? value.jsonString
                line += "  \(key)=\(text)"
            }
            print(line)
        }
    }
}

struct AdaptersAddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Register an adapter (a PEFT folder or a .gguf LoRA file on the server's machine).")
    @Argument(help: "Name to register it under (the model name requests use).") var name: String
    @Argument(help: "Path of the adapter, as the server sees it (inside its adapters_dir or adapter_roots).") var path: String
    @Flag(help: "Serve it merged into a private copy of the weights instead of as a LoRA delta.") var merged = false
    @OptionGroup var connection: AdminConnectionOptions

    func run() throws {
        let started = Date()
        _ = try connection.call("add \(name)") { admin throws(HTTPClientError) in try admin.add(name: name, path: path, merged: merged) }
        if !connection.json { print(String(format: "added %@ (%.2f s)", name, Date().timeIntervalSince(started))) }
    }
}

struct AdaptersRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Unregister an adapter.")
    @Argument(help: "The adapter's registered name.") var name: String
    @OptionGroup var connection: AdminConnectionOptions

    func run() throws {
        _ = try connection.call("remove \(name)") { admin throws(HTTPClientError) in try admin.remove(name: name) }
        if !connection.json { print("removed \(name)") }
    }
}
