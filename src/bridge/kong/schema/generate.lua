-- Dump the schemas of Kong's bundled plugins as JSON, from Kong's own Lua sources.
--
--   luajit generate.lua <kong git dir> <tag> > plugin_schemas.json
--
-- It runs each kong/plugins/<name>/schema.lua (and the real typedefs, constants,
-- redis/queue/propagation schemas it requires) read with `git show <tag>:<path>`.
-- Modules outside Kong's tree (resty.*, socket.url, pl.*...) are replaced by inert
-- stubs that remember their path ({"__stub": "ngx.encode_base64()"} in the output,
-- e.g. a default computed at load time). Functions cannot be serialised: a custom validator
-- becomes its Lua name ("validate_header_name"), a shorthand becomes the path it is
-- "replaced_with", so the emulator can implement the ones it knows.
-- Lists Kong itself builds with pairs() (the tracing propagation one_of lists) come out
-- in hash order, which varies between runs, in Kong as here.
local GIT_DIR, TAG = arg[1], arg[2]

local function git_show(path)
  local pipe = io.popen(("git -C '%s' show '%s:%s' 2>/dev/null"):format(GIT_DIR, TAG, path))
  local text = pipe:read("*a")
  pipe:close()
  if text == "" then return nil end
  return text
end

-- An inert value standing for anything from a module we do not load.
local stub_meta = {}
local function stub(path)
  return setmetatable({ __stub = path }, stub_meta)
end
stub_meta.__index = function(t, k) return stub(rawget(t, "__stub") .. "." .. tostring(k)) end
stub_meta.__call = function(t) return stub(rawget(t, "__stub") .. "()") end
stub_meta.__concat = function(a, b) return tostring(a) .. tostring(b) end
stub_meta.__tostring = function(t) return rawget(t, "__stub") end

NULL = setmetatable({}, { __tostring = function() return "null" end })
ngx = stub("ngx")
rawset(ngx, "null", NULL)
rawset(ngx, "config", { subsystem = "http" })
rawset(ngx, "re", stub("ngx.re"))

table.unpack = table.unpack or unpack
-- Modules that reach for the OS (FFI, /dev/urandom) when loaded: stubbed outright.
local NEVER_LOAD = { ["kong.tools.rand"] = true }

local sources = {}  -- chunk name -> source lines, to name functions
local loaded = {}

local schema_module = {
  define = function(tbl)
    return setmetatable(tbl, {
      __call = function(t, overrides)
        overrides = overrides or {}
        for k, v in pairs(t) do
          if overrides[k] == nil then overrides[k] = v end
        end
        return overrides
      end,
    })
  end,
  validators = stub("kong.db.schema.validators"),
}

local real_require = require
function require(name)
  if loaded[name] ~= nil then return loaded[name] end
  if name == "kong.db.schema" then loaded[name] = schema_module; return schema_module end
  if name == "table.clone" then  -- OpenResty's shallow copy
    loaded[name] = function(t)
      local copy = {}
      for k, v in pairs(t) do copy[k] = v end
      return copy
    end
    return loaded[name]
  end
  local base = name:gsub("%.", "/")
  local text, path = nil, nil
  if name:match("^kong%.") and not NEVER_LOAD[name] then
    for _, candidate in ipairs({ base .. ".lua", base .. "/init.lua" }) do
      text = git_show(candidate)
      if text then path = candidate; break end
    end
  end
  local result
  if text then
    local chunk, err = loadstring(text, "@" .. path)
    if chunk then
      sources[path] = {}
      for line in (text .. "\n"):gmatch("(.-)\n") do table.insert(sources[path], line) end
      local ok, value = pcall(chunk, name)
      if ok then result = value else io.stderr:write("stubbed " .. name .. ": " .. tostring(value) .. "\n") end
    end
  end
  if result == nil then result = stub(name) end
  loaded[name] = result
  return result
end

local function function_name(fn)
  local info = debug.getinfo(fn, "S")
  local path = info.source:sub(2)
  local line = sources[path] and sources[path][info.linedefined] or ""
  return line:match("function%s+[%w_.:]*[.:]([%w_]+)%s*%(")
      or line:match("function%s+([%w_]+)%s*%(")
      or line:match("([%w_]+)%s*=%s*function")
      or (path .. ":" .. info.linedefined)
end

-- JSON encoding with sorted keys; Lua arrays stay arrays.
local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  if n == 0 then return false end
  for i = 1, n do if t[i] == nil then return false end end
  return true
end

local encode
local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local map = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
    return map[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

function encode(value)
  local kind = type(value)
  if value == NULL then return "null" end
  if kind == "string" then return encode_string(value) end
  if kind == "number" then
    if value == math.floor(value) and math.abs(value) < 2^53 then return ("%d"):format(value) end
    return ("%.17g"):format(value)
  end
  if kind == "boolean" then return tostring(value) end
  if kind == "function" then return encode_string(function_name(value)) end
  if kind == "table" then
    if getmetatable(value) == stub_meta then
      return '{"__stub":' .. encode_string(rawget(value, "__stub")) .. "}"
    end
    if is_array(value) then
      local parts = {}
      for _, item in ipairs(value) do table.insert(parts, encode(item)) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(value) do table.insert(keys, tostring(k)) end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do
      local v = value[k]
      if v == nil then v = value[tonumber(k)] end
      table.insert(parts, encode_string(k) .. ":" .. encode(v))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end

local constants = require("kong.constants")
local names = {}
for name in pairs(constants.BUNDLED_PLUGINS) do table.insert(names, name) end
table.sort(names)

local handlers_priority = {}
local out = {}
for _, name in ipairs(names) do
  local schema = require("kong.plugins." .. name .. ".schema")
  local handler_text = git_show("kong/plugins/" .. name .. "/handler.lua") or ""
  -- pre-function and post-function pass their priority to a shared handler.
  local priority = tonumber(handler_text:match("PRIORITY%s*=%s*(%-?%d+)")
                            or handler_text:match("_handler\"%)%((%-?%d+)%)")
                            or handler_text:match("define%([%w_]+,%s*(%-?%d+)%)"))
  -- Bundled handlers report Kong's own version (kong_meta.version) unless they pin one.
  local version = handler_text:match("VERSION%s*=%s*\"([^\"]+)\"") or TAG
  table.insert(out, encode_string(name) .. ":" .. encode({
    priority = priority or NULL,
    version = version or NULL,
    schema = schema,
  }))
end
io.write('{"kong_version":', encode_string(TAG), ',"plugins":{', table.concat(out, ",\n"), "}}\n")
