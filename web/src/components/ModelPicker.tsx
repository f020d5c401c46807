import { useId } from "react";

export interface ModelPickerProps {
  models: string[];
  value: string;
  onChange: (model: string) => void;
  loading: boolean;
  disabled: boolean;
}

export function ModelPicker({ models, value, onChange, loading, disabled }: ModelPickerProps) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>Model</label>
      <select
        id={id}
        value={value}
        onChange={(event) => onChange(event.target.value)}
        disabled={disabled || models.length === 0}
        aria-busy={loading}
      >
        {models.length === 0 && <option value="">{loading ? "Loading…" : "No models"}</option>}
        {models.map((model) => (
          <option key={model} value={model}>
            {model}
          </option>
        ))}
      </select>
    </div>
  );
}
