# The one byte-to-C conversion of the two embedding scripts (embed.cmake: a page's CSS or JS as
# a string; embed_ui.cmake: the web UI's files as a table). CMake alone, no xxd.
#
# embed_bytes(FILE PER_LINE BYTES SIZE): sets BYTES to FILE's bytes as C initialiser text
# ("0x3c,0x21,...", PER_LINE bytes a line, lines indented by four spaces) and SIZE to its length.
function(embed_bytes file per_line out_bytes out_size)
  file(READ "${file}" hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR size "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){${per_line}})" "\\1\n    " bytes "${bytes}")
  set(${out_bytes} "${bytes}" PARENT_SCOPE)
  set(${out_size} ${size} PARENT_SCOPE)
endfunction()
