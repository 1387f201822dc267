export const WAT_PATH: string;
export const OUT_PATH: string;
export function wasmModuleSource(wat: string): Promise<string>;
