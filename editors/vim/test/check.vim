" Checks the Assay syntax file over the files in the argument list; run by ../test.sh.
" For every file:
"   * loading it sets no error message;
"   * no character is highlighted by an *Error group (every file given is valid Assay);
"   * every column-0 declaration keyword is an assayDeclaration;
"   * the file does not end inside a string or a comment;
"   * each assertion comment `// ^ group` (or `// ^^^ group`) holds: the characters above the
"     carets, on the nearest line that is not an assertion, are highlighted by that group
"     (`none`: by no group).
" Failures go to $CHECK_OUT, one per line, then a summary line; the exit status is 1 when
" anything failed.

let s:failures = []
let s:assertions = 0
let s:decl = '^\%(suite\|use\|taxonomy\|mapping\|persona\|template\|dataset\|axis\|target\|program\|judge\|metric\|grade\|standard\|report\)\>'

function! s:Group(lnum, col) abort
  return synIDattr(synID(a:lnum, a:col, 1), 'name')
endfunction

function! s:Fail(msg) abort
  call add(s:failures, expand('%') . ': ' . a:msg)
endfunction

function! s:CheckBuffer() abort
  if v:errmsg !=# ''
    call s:Fail('error while loading: ' . v:errmsg)
    let v:errmsg = ''
  endif
  if &filetype !=# 'assay' || get(b:, 'current_syntax', '') !=# 'assay'
    call s:Fail('filetype or syntax not set to assay')
    return
  endif
  let last_code = 0
  for lnum in range(1, line('$'))
    let text = getline(lnum)
    let assertion = matchlist(text, '^//\s*\zs\(\^\+\)\s\+\(\S\+\)')
    if !empty(assertion)
      let col = stridx(text, '^') + 1
      for c in range(col, col + len(assertion[1]) - 1)
        let s:assertions += 1
        let got = s:Group(last_code, c)
        let got = got ==# '' ? 'none' : got
        if got !=# assertion[2]
          call s:Fail(printf('%d:%d expected %s, got %s', last_code, c, assertion[2], got))
        endif
      endfor
      continue
    endif
    if text !~# '^\s*$'
      let last_code = lnum
    endif
    for c in range(1, len(text))
      if s:Group(lnum, c) =~# 'Error'
        call s:Fail(printf('%d:%d highlighted as %s', lnum, c, s:Group(lnum, c)))
        break
      endif
    endfor
    if text =~# s:decl && s:Group(lnum, 1) !=# 'assayDeclaration'
      call s:Fail(printf('%d:1 declaration keyword highlighted as %s', lnum, s:Group(lnum, 1)))
    endif
  endfor
  if last_code > 0 && getline(last_code) !~# '^\s*//'
    let end = s:Group(last_code, len(getline(last_code)))
    if end =~# 'String\|Comment'
      call s:Fail(printf('ends inside %s', end))
    endif
  endif
endfunction

let s:files = argc()
for s:i in range(s:files)
  execute 'silent buffer' (s:i + 1)
  call s:CheckBuffer()
endfor

call add(s:failures, printf('vim-syntax: %d files, %d assertions, %d failures',
      \ s:files, s:assertions, len(s:failures)))
call writefile(s:failures, $CHECK_OUT)
if len(s:failures) > 1
  cquit
endif
qall!
