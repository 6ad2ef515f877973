" Assay specs: *.assay
autocmd BufRead,BufNewFile *.assay setfiletype assay
