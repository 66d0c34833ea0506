# Sourced by the offline probes (image_collapse.sh, state_probe.sh): for each "name|objective|sets"
# in VARIANTS, `actjepa compare` with COMMON into OUT/name, and one JSON line per variant appended
# to RESULTS (resumable: a variant already there is skipped). The caller sets RESULTS, OUT,
# COMMON (array) and VARIANTS (array), and cds to the repository root.
compare_variants() {
  touch "$RESULTS"
  for v in "${VARIANTS[@]}"; do
    IFS='|' read -r name objective sets <<< "$v"
    grep -q "\"variant\": \"$name\"" "$RESULTS" && continue
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 .venv/bin/actjepa compare "${COMMON[@]}" --objectives "$objective" $sets \
      --out "$OUT/$name"
    .venv/bin/python - "$OUT/$name/compare.jsonl" "$name" "$sets" >> "$RESULTS" <<'PY'
import json, sys
row = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(json.dumps({"variant": sys.argv[2], "overrides": sys.argv[3], **row}))
PY
  done
  cat "$RESULTS"
}
