import MatrixAMX

/// Whether this process may run the AMX tile products of MatrixAMX: the CPU has them, nothing asked for less
/// (`CPUFeatures.amx`), and Linux granted the tile state, which it only keeps for processes that ask (once).
public enum AMXTiles {
    public static let available: Bool = CPUFeatures.amx && amx_request_permission() == 1
}
