"""TinyOps benchmarks: ``python -m benchmarks [--quick] [--json]``.

Each module measures one area and returns ``Figure`` objects (see ``common.py``); the
runner prints them as a table and, with ``--json``, as one JSON object on the last line.
"""

# benchmark module → the keys it reports (the order of the table)
KEYS: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest_ratio", "ingest_parser_ratio"),
    "transfer": ("transfer_efficiency_raw", "transfer_efficiency", "upload_vs_smpmgr",
                 "upload_vs_smpmgr_default"),
    "plot": ("plot_p95_ms", "plot16_p95_ms", "live_cpu_drift_pct", "live_rss_growth_mb"),
    "gui": ("gui_start_s", "tf_imported_at_start", "rss_mb_idle", "rss_mb_live"),
    "quantize": ("quantize_s",),
    "models": ("models_analyze_s", "models_quantize_s"),
    "hotplug": ("hotplug_s",),
    "firmware": ("fw_stock_upload_vs_smpclient", "fw_fs_upload_vs_smpclient",
                 "fw_image_vs_smpclient"),
    "installer": ("installer_mb", "installer_tar_mb", "installer_with_tf_mb", "installed_mb",
                  "installed_with_tf_mb", "installed_gui_start_s", "installed_rss_mb_idle",
                  "rss_mb_after_quantize"),
    "tinyops_fw": ("tfw_build_cold_s", "tfw_build_cached_s", "tfw_upload_vs_smpclient"),
    "fleet": ("fleet_raw_bytes_per_s", "fleet_summary_bytes_per_s", "fleet_lag_p95_ms_100",
              "fleet_cpu_100", "fleet_lost_100", "fleet_lag_p95_ms_1000", "fleet_cpu_1000",
              "fleet_lost_1000"),
    "rollout_scale": ("rollout_transfer_all_s", "rollout_create_to_100_s",
                      "rollout_bytes_per_device_ratio", "rollout_breach_to_halt_s"),
}
BENCHMARKS: tuple[str, ...] = tuple(KEYS)
