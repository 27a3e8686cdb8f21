import Foundation

/// Loads LoRA adapters from disk into validated in-memory weights.
///
/// Everything is checked before anything is returned: on error nothing is half-loaded.
public enum AdapterLoader {
    /// Loads a PEFT folder (`adapter_config.json` + `adapter_model.safetensors`) or a llama.cpp GGUF LoRA file.
    ///
    /// - Parameters:
    ///   - path: a folder (PEFT) or a `.gguf` file.
    ///   - name: the name the adapter is served under.
    ///   - base: the base model the adapter must fit.
    /// - Returns: modules with `b` rows in GGUF order (PEFT q/k `lora_B` rows rotary-permuted).
    public static func load(path: String, name: String, base: BaseModelShape) throws(AdapterError) -> LoRAAdapterFile {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw AdapterError(path: path, "no such file or folder")
        }
        if isDirectory.boolValue {
            return try PEFTLoader.load(folder: path, name: name, base: base)
        }
        return try GGUFLoRALoader.load(path: path, name: name, base: base)
    }
}
