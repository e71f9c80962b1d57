;; has_stop_export.wat: already exports the name Instrument needs.
(module
  (func (export "wasmgate_stop"))
)
