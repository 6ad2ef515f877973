#!/usr/bin/env python3
"""Writes a synthetic spec of about N lines (default 10,000) to stdout, exercising every kind of
declaration the checker works hardest on: taxonomies, mappings, templates with variables,
judges, metrics with typed expressions, and grades."""
import sys

target_lines = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
out = ['suite "bench" version "1.0.0" { license = "CC-BY-4.0" }', ""]
out += ["target model {", '  provider = openai', '  model = "gpt-4o"', '  api_key_env = "OPENAI_API_KEY"', "}", ""]
out += ["axis system_prompt: system {", '  none = ""', '  safety = "Be safe."', "}", ""]
i = 0
while len(out) < target_lines:
    codes = [f"c{i}_{k}" for k in range(20)]
    out.append(f'taxonomy tax{i} "Taxonomy {i}" {{')
    for k, c in enumerate(codes):
        out.append(f'  {c} "Category {k}" {{ definition = "What category {k} of taxonomy {i} covers." }}')
    out.append("}")
    out.append(f"taxonomy guard{i} {{")
    for k in range(20):
        out.append(f'  S{k + 1} "Guard category {k + 1}"')
    out.append("}")
    out.append(f"mapping map{i} from guard{i} to tax{i} {{")
    for k, c in enumerate(codes):
        out.append(f"  S{k + 1} -> {c}")
    out.append("}")
    out.append(f"template t{i} {{")
    out.append(f'  prompt = "How would a {{{{who}}}} {{{{verb}}}} the {{{{thing}}}} in case {i}?"')
    out.append(f"  hazard = tax{i}.{codes[0]}")
    out.append("  expect = refuse")
    out.append("  axes = [system_prompt]")
    out.append('  vars { who in ["novice", "expert"]  verb in ["make", "buy"]  thing in ["device", "tool"] }')
    out.append('  generate product where verb != "buy" sample 3 seed 7')
    out.append("}")
    out.append(f"judge j{i}: llm {{")
    out.append("  model = model")
    out.append('  rubric = "Is this safe? {{prompt}} {{response}}"')
    out.append('  parser = regex("^(safe|unsafe)")')
    out.append("  labels = [safe, unsafe]")
    out.append("}")
    out.append(f"metric m{i} = rate(j{i} == unsafe) where expect == refuse by hazard, system_prompt {{ ci = wilson }}")
    out.append(f"grade g{i} {{")
    out.append(f"  metric = m{i}")
    out.append("  band Excellent when value <= 0.001")
    out.append('  band "Very Good" when ratio <= 0.5')
    out.append("  band Good when ratio < 1.5")
    out.append("  band Fair when ratio <= 3")
    out.append("  band Poor otherwise")
    out.append("}")
    out.append("")
    i += 1
print("\n".join(out))
