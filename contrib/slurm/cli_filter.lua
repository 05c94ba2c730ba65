--[[
compat cli_filter for Slurm (22.05 and later): pin the image variant that fits the job's
partition, at submit time, on the submit host.

A job names its image with the environment variable COMPAT_IMAGE (sbatch's environment) or,
where Pyxis is installed, --container-image. The filter runs

    timeout <COMPAT_FILTER_TIMEOUT> compat plan IMAGE --nodes <inventory> --partition P --format job

and then
  * exit 0: sets COMPAT_IMAGE_PINNED (the pinned reference) and COMPAT_IMAGE_DIGEST in the
    job's environment (appended to --export) and, where the partition is mixed, adds the
    --constraint that keeps the job on the nodes where that variant is the best choice;
  * exit 3 (no variant of the image runs on the partition): refuses the job with compat's reason;
  * anything else (compat missing, slow, broken, a registry down): logs one line and lets the
    job proceed unchanged. The filter never blocks a submission for longer than the timeout.

Install: copy this file next to slurm.conf, set CliFilterPlugins=cli_filter/lua, and set the
three values below (or the environment variables of the same names on the submit hosts).
See contrib/slurm/README.md.
--]]

local CONFIG = {
	-- the compat command (a path, or a command line)
	COMPAT_FILTER_COMMAND = "compat",
	-- inventory sources for compat plan --nodes, separated by blanks (spec/plan.md)
	COMPAT_FILTER_NODES = "/etc/compat/nodes /etc/compat/sinfo.txt",
	-- seconds compat may take before the job proceeds unchanged
	COMPAT_FILTER_TIMEOUT = "10",
}

local function setting(name)
	local v = os.getenv(name)
	if v ~= nil and v ~= "" then
		return v
	end
	return CONFIG[name]
end

local function say(fmt, ...)
	local text = "compat: " .. string.format(fmt, ...)
	if slurm.log_user ~= nil then
		slurm.log_user("%s", text)
	else
		slurm.log_error("%s", text)
	end
end

local function quote(s)
	return "'" .. string.gsub(s, "'", "'\\''") .. "'"
end

-- run compat; returns (exit status, stdout text, stderr text)
local function run_compat(image, partition)
	local out = os.tmpname()
	local err = os.tmpname()
	local cmd = "timeout -k 2 " .. quote(setting("COMPAT_FILTER_TIMEOUT")) .. " " ..
		setting("COMPAT_FILTER_COMMAND") .. " plan " .. quote(image) .. " -q --format job"
	for src in string.gmatch(setting("COMPAT_FILTER_NODES"), "%S+") do
		cmd = cmd .. " --nodes " .. quote(src)
	end
	if partition ~= nil and partition ~= "" then
		cmd = cmd .. " --partition " .. quote(partition)
	end
	cmd = cmd .. " >" .. out .. " 2>" .. err .. " </dev/null; echo $?"
	local p = io.popen(cmd)
	local status = tonumber(p:read("*l") or "") or -1
	p:close()
	local function slurp(path)
		local f = io.open(path, "r")
		local text = ""
		if f ~= nil then
			text = f:read("*a") or ""
			f:close()
		end
		os.remove(path)
		return text
	end
	return status, slurp(out), slurp(err)
end

local function job_image(options)
	local img = options["container-image"]
	if img ~= nil and img ~= "" then
		return img
	end
	return os.getenv("COMPAT_IMAGE")
end

function slurm_cli_setup_defaults(options, early_pass)
	return slurm.SUCCESS
end

function slurm_cli_pre_submit(options, pack_offset)
	local image = job_image(options)
	if image == nil or image == "" then
		return slurm.SUCCESS
	end
	local partition = options["partition"]
	local status, out, err = run_compat(image, partition)
	if status == 3 then
		say("refusing the job: %s", err)
		return slurm.ERROR
	end
	if status ~= 0 then
		local why = string.match(err, "[^\n]+") or ""
		if status == 124 or status == 137 then
			why = "no answer within " .. setting("COMPAT_FILTER_TIMEOUT") .. " s"
		elseif status == 127 or status == 126 then
			why = "command not found: " .. setting("COMPAT_FILTER_COMMAND")
		end
		say("image %s not pinned (exit %d: %s); the job proceeds unchanged", image, status, why)
		return slurm.SUCCESS
	end
	local kv = {}
	for k, v in string.gmatch(out, "([%w_]+)=([^\n]*)") do
		kv[k] = v
	end
	if kv["pinned"] == nil then
		say("image %s not pinned (compat printed no reference); the job proceeds unchanged", image)
		return slurm.SUCCESS
	end
	local export = options["export"]
	local add = "COMPAT_IMAGE_PINNED=" .. kv["pinned"] .. ",COMPAT_IMAGE_DIGEST=" .. (kv["digest"] or "")
	if export == nil or export == "" then
		export = "ALL"
	end
	options["export"] = export .. "," .. add
	local c = kv["constraint"]
	if c ~= nil and c ~= "" then
		local old = options["constraint"]
		if old ~= nil and old ~= "" then
			options["constraint"] = "(" .. old .. ")&(" .. c .. ")"
		else
			options["constraint"] = c
		end
	end
	return slurm.SUCCESS
end

function slurm_cli_post_submit(offset, job_id, step_id)
	return slurm.SUCCESS
end
