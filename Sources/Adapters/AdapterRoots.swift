import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The folders adapters may be loaded from. A path is accepted only if it lies inside one of them after `.`, `..`
/// and every symbolic link are resolved, so neither `../../etc` nor a symlink pointing elsewhere escapes.
public struct AdapterRoots: Sendable, Equatable {
    /// Canonical (symlink-free, absolute) root folders.
    public let paths: [String]
    /// The roots as given (absolute, `..` folded), for messages about paths that do not exist.
    let spellings: [String]

    /// Every root must exist and be a folder.
    public init(_ roots: [String]) throws(AdapterRegistryError) {
        var resolved: [String] = []
        var spellings: [String] = []
        for root in roots {
            spellings.append(Self.normalize(root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root))
            guard let canonical = Self.realPath(root) else {
                throw .badRoot(root, reason: "does not exist or cannot be resolved")
            }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: canonical, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw .badRoot(root, reason: "is not a folder")
            }
            if !resolved.contains(canonical) { resolved.append(canonical) }
        }
        paths = resolved
        self.spellings = spellings
    }

    /// The canonical path of `path` if it is inside a root.
    ///
    /// A relative path is looked up under each root in order (the first that exists wins). The decision rests on
    /// the canonical path alone; a path that does not exist is reported as outside the roots when its lexical form
    /// (`..` folded) already is, so the error does not reveal whether files exist elsewhere.
    public func resolve(_ path: String) throws(AdapterRegistryError) -> String {
        guard !paths.isEmpty else { throw .outsideRoots(path: path, resolved: path, roots: []) }
        guard !path.isEmpty, !path.contains("\0") else { throw .noSuchPath(path) }
        let candidates = path.hasPrefix("/") ? [path] : paths.map { $0 + "/" + path }
        for candidate in candidates {
            guard let canonical = Self.realPath(candidate) else { continue }
            guard contains(canonical) else { throw .outsideRoots(path: path, resolved: canonical, roots: paths) }
            return canonical
        }
        let lexical = Self.normalize(candidates[0])
        if !contains(lexical) && !spellings.contains(where: { lexical == $0 || lexical.hasPrefix($0 + "/") }) {
            throw .outsideRoots(path: path, resolved: lexical, roots: paths)
        }
        throw .noSuchPath(path)
    }

    /// Whether a canonical or normalized absolute path lies inside (or is) a root.
    public func contains(_ absolute: String) -> Bool {
        paths.contains { root in absolute == root || absolute.hasPrefix(root == "/" ? "/" : root + "/") }
    }

    /// `a/./b/../c` → `a/c`, without touching the disk; `..` above `/` stays at `/`.
    static func normalize(_ absolute: String) -> String {
        var parts: [Substring] = []
        for part in absolute.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// realpath(3): absolute, no `.`/`..`, no symlinks; nil if the path does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
