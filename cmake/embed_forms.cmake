# embed_forms.cmake - write a C file holding every conf/forms/*.json, so
# that the programs carry the forms they were built and tested with and
# run from the build tree without `make install` (sync/formsrc.h).
#
#   cmake -DFORMS_DIR=<dir> -DOUT=<file.c> -P embed_forms.cmake
#
# Each file becomes a byte array (no C string escaping to get wrong) and
# an entry {collection, bytes, length}; the collection is the file name.
file(GLOB forms LIST_DIRECTORIES false "${FORMS_DIR}/*.json")
list(SORT forms)
list(LENGTH forms n)
if(n EQUAL 0)
  message(FATAL_ERROR "embed_forms: no *.json in ${FORMS_DIR}")
endif()
set(body "/* Generated from conf/forms/ by cmake/embed_forms.cmake; do not edit. */\n")
string(APPEND body "#include \"sync/formsrc.h\"\n\n")
set(table "")
set(i 0)
foreach(f ${forms})
  get_filename_component(name ${f} NAME_WLE)
  if(NOT name MATCHES "^[a-z][a-z0-9_]*$")
    message(FATAL_ERROR "embed_forms: ${f}: a form's file name must be its collection")
  endif()
  file(READ ${f} hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND body "static const unsigned char form${i}[${len}] = {\n\t${bytes}\n};\n")
  string(APPEND table "\t{\"${name}\", form${i}, sizeof(form${i})},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND body "\nconst struct formsrc_builtin formsrc_builtins[] = {\n${table}};\n")
string(APPEND body "const size_t formsrc_builtin_count = ${n};\n")
# Rewritten only when it changes, so an unchanged form rebuilds nothing.
if(EXISTS ${OUT})
  file(READ ${OUT} old)
  if(old STREQUAL body)
    return()
  endif()
endif()
file(WRITE ${OUT} "${body}")
