" Vim syntax file
" Language:    Assay, the declarative language for AI-safety benchmarks
" Filenames:   *.assay
" Reference:   GRAMMAR.md and crates/assay-syntax/src/assay.pest in the Assay repository
"
" Assay's keywords are contextual (`persona = typical` is a property, `persona typical {` a
" declaration). Vim has no parse tree, so this file leans on the layout every spec follows:
" declarations start at column 0, a property key is a name followed by `=`, and a block
" keyword is never followed by `=`.

if exists('b:current_syntax')
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

syn case match
syn sync fromstart

" Names and values ------------------------------------------------------------------------
" For items that start at the same column, the one defined last wins: later sections refine
" earlier ones.

" A dotted path (`row.prompt`, `harm.physical`): the parts after a dot are fields.
syn match assayField /\.\@1<=\h\w*/

" Numbers (`0.95`, `1e-3`); `1a` is a taxonomy code, not a number.
syn match assayNumber /\<\d\+\%(\.\d\+\)\=\%([eE][+-]\=\d\+\)\=\>/

" Taxonomy codes: a category (`vcr "Violent Crimes"`) and both sides of a mapping or
" value-map rule (`S1 -> vcr`, `S2 -> [vcr, ncr]`, `"Scams" -> scams`).
syn match assayCode /\<\w\+\ze\s*"/
syn match assayCode /\<\w\+\ze\s*->/
syn match assayCode /\%(->\s*\)\@<=\w\+\>\ze\s*\%([^.(\[[:space:]]\|$\)/
syn region assayCodeList matchgroup=assayDelimiter start=/\%(->\s*\)\@<=\[/ end=/\]/ contains=assayCodeInList,assayComment oneline
syn match assayCodeInList /\w\+/ contained

" Calls: `file("x")`, `rate(guard == unsafe)`, `wrap(...)`.
syn match assayFunctionCall /\<\h\w*\ze\s*(/

" A named call argument (`clamp(x, lo: 0)`) or a dataset column (`id: string`).
syn match assayLabel /\<\h\w*\ze\s*:[^:]/
syn match assayColumnType /\%(:\s*\)\@<=\%(string\|int\|float\|bool\|list\|record\)\>/

" Property keys: a name followed by `=` (not `==`).
syn match assayProperty /\<\h\w*\ze\s*=\%([=]\)\@!/

" Module paths: `std::taxonomy::ailuminate_v1`.
syn match assayModulePath /\<\h\w*\%(::\h\w*\)\+/

syn keyword assayBoolean true false

" Operators -------------------------------------------------------------------------------

syn match assayOperator /==\|!=\|<=\|>=\|->\|\.\.\|[<>+*\/^=|-]/
syn keyword assayWordOperator and or not in

" Keywords --------------------------------------------------------------------------------

" Block keywords are contextual: never a keyword before `=` (a property key) or a dot.
syn match assayKeyword /\.\@1<!\<\%(version\|from\|to\|vars\|generate\|where\|sample\|seed\|columns\|map\|item\|user\|assistant\|attacker\|stop\|when\|aspects\|by\|band\|otherwise\|table\|chart\)\>\%(\s*=[^=]\|\.\)\@!/

" `by hazard, persona` and `table m1, m2`: lists of names.
syn match assayKeyword /\.\@1<!\<by\>\%(\s*=[^=]\|\.\)\@!/ nextgroup=assayGroupName skipwhite
syn match assayGroupName /\h\w*/ contained nextgroup=assayGroupComma skipwhite
syn match assayGroupComma /,/ contained nextgroup=assayGroupName skipwhite skipnl
syn match assayKeyword /\.\@1<!\<table\>\%(\s*=[^=]\|\.\)\@!/ nextgroup=assayTableMetric skipwhite
syn match assayTableMetric /\h\w*/ contained nextgroup=assayTableComma skipwhite
syn match assayTableComma /,/ contained nextgroup=assayTableMetric skipwhite skipnl

" `map COLUMN to TAXONOMY {`.
syn match assayKeyword /\.\@1<!\<map\>\%(\s*=[^=]\|\.\)\@!/ nextgroup=assayMapColumn,assayString skipwhite
syn match assayMapColumn /\h\w*/ contained nextgroup=assayMappingTo skipwhite

" `generate product|zip` names the generator.
syn match assayKeyword /\.\@1<!\<generate\>\%(\s*=[^=]\|\.\)\@!/ nextgroup=assayBuiltin skipwhite
syn match assayBuiltin /\h\w*/ contained

" `band NAME when ...`: the band's name.
syn match assayKeyword /\.\@1<!\<band\>\%(\s*=[^=]\|\.\)\@!/ nextgroup=assayBand,assayString skipwhite
syn match assayBand /\h\w*/ contained

" `chart KIND METRIC`.
syn match assayKeyword /\.\@1<!\<chart\>\%(\s*=[^=]\|\.\)\@!/ nextgroup=assayChartKind skipwhite
syn match assayChartKind /\h\w*/ contained nextgroup=assayFunctionName skipwhite

" Declarations start at column 0. Names a spec defines are types, those that compute
" are functions, as in the VS Code grammar.
syn match assayDeclaration /^\%(suite\|use\)\>/
syn match assayDeclaration /^\%(taxonomy\|persona\|dataset\|target\|standard\)\>/ nextgroup=assayTypeName skipwhite
syn match assayDeclaration /^\%(template\|program\|metric\|grade\|report\)\>/ nextgroup=assayFunctionName skipwhite
syn match assayDeclaration /^mapping\>/ nextgroup=assayMappingName skipwhite
syn match assayDeclaration /^axis\>/ nextgroup=assayKindedTypeName skipwhite
syn match assayDeclaration /^judge\>/ nextgroup=assayKindedFunctionName skipwhite

syn match assayTypeName /\h\w*/ contained
syn match assayFunctionName /\h\w*/ contained
syn match assayMappingName /\h\w*/ contained nextgroup=assayMappingFrom skipwhite
syn match assayMappingFrom /from\>/ contained nextgroup=assayMappingSource skipwhite
syn match assayMappingSource /\h\w*/ contained nextgroup=assayMappingTo skipwhite
syn match assayMappingTo /to\>/ contained nextgroup=assayTypeName skipwhite
syn match assayKindedTypeName /\h\w*/ contained nextgroup=assayKindSep skipwhite
syn match assayKindedFunctionName /\h\w*/ contained nextgroup=assayKindSep skipwhite
syn match assayKindSep /:/ contained nextgroup=assayKind skipwhite
syn match assayKind /\h\w*/ contained

" Strings ---------------------------------------------------------------------------------

" Handlebars inside prompts and rubrics: `{{name}}`, `{{{raw}}}`, `{{#each xs}}`, `{{! note }}`.
syn region assayInterpolation matchgroup=assayInterpolationDelim start=/{{{\=/ end=/}}}\=/ contained oneline contains=assayHandlebarsKeyword,assayHandlebarsComment
syn match assayHandlebarsKeyword /[#/]\h\w*/ contained
syn match assayHandlebarsComment /!.\{-}\ze}}/ contained

" `"..."` stays on one line and takes \" \\ \n \t \r \{ \} \u{H}; anything else is an error.
syn match assayEscape /\\\%(["\\ntr{}]\|u{\x\{1,6}}\)/ contained
syn match assayEscapeError /\\\%(["\\ntr{}]\|u{\x\{1,6}}\)\@!./ contained
syn region assayString start=/"/ skip=/\\\\\|\\"/ end=/"\|$/ contains=assayEscape,assayEscapeError,assayInterpolation,@Spell

" `"""..."""` is verbatim: it may span lines and has no escapes.
syn region assayTripleString start=/"""/ end=/"""/ contains=assayInterpolation,@Spell

" Comments (defined last: `//` and `/*` never start a division) ---------------------------

syn keyword assayTodo TODO FIXME XXX NOTE contained
syn match assayComment "//.*$" contains=assayTodo,@Spell
syn region assayComment start="/\*" end="\*/" contains=assayTodo,@Spell

" Highlight links -------------------------------------------------------------------------

hi def link assayComment            Comment
hi def link assayTodo               Todo
hi def link assayString             String
hi def link assayTripleString       String
hi def link assayEscape             SpecialChar
hi def link assayEscapeError        Error
hi def link assayInterpolation      Special
hi def link assayInterpolationDelim Delimiter
hi def link assayHandlebarsKeyword  Statement
hi def link assayHandlebarsComment  Comment
hi def link assayNumber             Number
hi def link assayBoolean            Boolean
hi def link assayCode               Constant
hi def link assayCodeInList         Constant
hi def link assayDelimiter          Delimiter
hi def link assayOperator           Operator
hi def link assayWordOperator       Operator
hi def link assayDeclaration        Keyword
hi def link assayKeyword            Keyword
hi def link assayMappingFrom        Keyword
hi def link assayMappingTo          Keyword
hi def link assayTypeName           Type
hi def link assayKindedTypeName     Type
hi def link assayMappingName        Type
hi def link assayMappingSource      Type
hi def link assayFunctionName       Function
hi def link assayKindedFunctionName Function
hi def link assayKind               StorageClass
hi def link assayKindSep            Delimiter
hi def link assayBuiltin            Function
hi def link assayChartKind          StorageClass
hi def link assayBand               Label
hi def link assayGroupName          Identifier
hi def link assayGroupComma         Delimiter
hi def link assayTableMetric        Function
hi def link assayTableComma         Delimiter
hi def link assayMapColumn          Identifier
hi def link assayColumnType         Type
hi def link assayFunctionCall       Function
hi def link assayModulePath         Include
hi def link assayProperty           Identifier
hi def link assayLabel              Identifier
hi def link assayField              Identifier

let b:current_syntax = 'assay'

let &cpo = s:cpo_save
unlet s:cpo_save
