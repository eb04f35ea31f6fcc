#!/usr/bin/env bash
# Rebuild data/demo.jsonl with the project's own generator and the embedded model (offline).
# Takes about 5 minutes on 2 cores. Run from the repository root inside the virtual environment.
set -euo pipefail
DB=$(mktemp -d)/demo.duckdb
export SYNTH_LOAD_DEMO=0
gen() { python -m synth generate --db "$DB" "$@" >/dev/null; }

gen --prompt-name reviews --run-name "reviews v1 (t=0.7)" --n 50 --temperature 0.7 --seed 11 \
    --template "Write a short customer review of a {product}." \
    --var "product=coffee grinder,rain jacket,phone case,desk lamp,hiking boots,electric kettle,yoga mat,backpack"
gen --prompt-name reviews --run-name "reviews v1 (t=0.2, collapsed)" --n 40 --temperature 0.2 --seed 12 \
    --template "Write a short customer review of a {product}." \
    --var "product=coffee grinder,rain jacket,phone case,desk lamp,hiking boots,electric kettle,yoga mat,backpack"
gen --prompt-name reviews --run-name "reviews v2 (tone x aspect)" --n 50 --temperature 0.9 --seed 13 \
    --template "Write a short {tone} customer review of a {product} that talks about its {aspect}." \
    --var "tone=enthusiastic,disappointed,neutral" --var "product=coffee grinder,rain jacket,desk lamp,hiking boots,backpack" \
    --var "aspect=price,durability,delivery"
gen --prompt-name support-questions --run-name "support v1" --n 50 --temperature 0.8 --seed 21 \
    --template "Write one question a customer might ask support about their {product}." \
    --var "product=internet router,washing machine,banking app,smart watch,train ticket"
gen --prompt-name support-questions --run-name "support v2 (personas)" --n 50 --temperature 1.0 --seed 22 \
    --system "You write realistic customer support messages. Answer with the message only." \
    --template "As a {persona}, write one message to customer support about a {product} that {problem}." \
    --var "persona=retired teacher,busy nurse,student,small business owner" \
    --var "product=internet router,banking app,smart watch" --var "problem=stopped working,was charged twice,arrived late"
gen --prompt-name product-descriptions --run-name "descriptions v1" --n 50 --temperature 0.6 --seed 31 \
    --template "Describe a {product} in two sentences for an online shop." \
    --var "product=ceramic mug,wool scarf,bluetooth speaker,standing desk,water bottle,garden hose,chess set,notebook,umbrella,headphones"

python -m synth export --db "$DB" --out data/demo.jsonl
python -c "from synth.workflows.demo import write_demo_vectors; from synth.workflows.pipeline import open_store; \
print(write_demo_vectors(open_store('$DB'), 'data/demo.jsonl'))"
# The default clustering of the demo as loaded (k-means fitted here, without the old clusters file).
rm -f data/demo_clusters.json
SYNTH_LOAD_DEMO=1 python -c "from synth.workflows.demo import ensure_demo, write_demo_clusters; \
from synth.workflows.pipeline import open_store; s = open_store('$(dirname "$DB")/clusters.duckdb'); \
ensure_demo(s, measure=False, shipped_clusters=False); print(write_demo_clusters(s, 'data/demo.jsonl'))"
