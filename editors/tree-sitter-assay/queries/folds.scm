; Every block folds: declaration bodies, nested categories, sub-blocks and multi-line values.
[
  (property_block)
  (taxonomy_body)
  (mapping_body)
  (template_body)
  (vars_block)
  (dataset_body)
  (columns_block)
  (value_map)
  (program_body)
  (judge_body)
  (grade_body)
  (report_body)
  (use_list)
  (record)
  (list)
  (comment)
] @fold
