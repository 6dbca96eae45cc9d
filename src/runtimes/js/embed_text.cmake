# Build-time helper: wraps a text file into a C++ raw string literal, so the JS prelude stays a
# readable .js file in the tree. Usage: cmake -DIN=file.js -DOUT=file.inc -P embed_text.cmake
file(READ "${IN}" text)
string(FIND "${text}" ")onemcp_embed\"" bad)
if(NOT bad EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw string delimiter")
endif()
file(WRITE "${OUT}.tmp" "R\"onemcp_embed(${text})onemcp_embed\"\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
